package seslocal

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// rawMessage is a Raw message split just enough to change a few header fields while every other
// byte, line endings included, stays exactly as the caller sent it.
type rawMessage struct {
	fields []rawField
	sep    []byte // the empty line ending the header
	body   []byte
	eol    string // line ending the header uses, for fields SES adds
}

type rawField struct {
	name string // as written, without the colon
	raw  []byte // the whole field: first line, continuation lines, their line endings
}

var errNoSeparator = errors.New("Message must contain a header and a body separated by a blank line.")

// splitRaw parses the header block. It is stricter than a mail reader on purpose: SES refuses a
// message it cannot parse, and so must we, or the local stack would accept mail production rejects.
func splitRaw(data []byte) (*rawMessage, error) {
	msg := &rawMessage{eol: "\r\n"}
	for pos, n := 0, 0; ; n++ {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return nil, errNoSeparator
		}
		line := data[pos : pos+i+1]
		if n == 0 && !bytes.HasSuffix(line, []byte("\r\n")) {
			msg.eol = "\n"
		}
		next := pos + i + 1
		if string(line) == "\r\n" || string(line) == "\n" {
			if len(msg.fields) == 0 {
				return nil, errors.New("Message has no header fields.")
			}
			msg.sep, msg.body = line, data[next:]
			return msg, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(msg.fields) == 0 {
				return nil, errors.New("Message starts with a header continuation line.")
			}
			f := &msg.fields[len(msg.fields)-1]
			f.raw = data[pos-len(f.raw) : next] // fields are contiguous, so extend in place
			pos = next
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 1 {
			return nil, fmt.Errorf("Illegal header line %d: %q.", n+1, truncate(string(bytes.TrimRight(line, "\r\n")), 40))
		}
		name := string(bytes.TrimRight(line[:colon], " \t"))
		if !validHeaderName(name) {
			return nil, fmt.Errorf("Illegal header name %q.", truncate(name, 40))
		}
		msg.fields = append(msg.fields, rawField{name: name, raw: line})
		pos = next
	}
}

// validHeaderName is RFC 5322's ftext: printable ASCII except the colon.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// value is the field body unfolded and trimmed.
func (f rawField) value() string {
	_, v, _ := strings.Cut(string(f.raw), ":")
	v = strings.ReplaceAll(v, "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.TrimSpace(v)
}

// value returns the first field named name, unfolded.
func (m *rawMessage) value(name string) string {
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			return f.value()
		}
	}
	return ""
}

func (m *rawMessage) values(name string) []string {
	var vs []string
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value())
		}
	}
	return vs
}

func (m *rawMessage) has(name string) bool {
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

// sesControlHeaders are read by SES from a Raw message and removed before it goes out.
var sesControlHeaders = map[string]bool{
	"x-ses-configuration-set": true,
	"x-ses-message-tags":      true,
	"x-ses-source-arn":        true,
	"x-ses-from-arn":          true,
	"x-ses-return-path-arn":   true,
}

type rawRewrite struct {
	messageID string // replaces the sender's Message-ID, or is added
	date      string // added only when the message has no Date
	from      string // added only when the message has no From
}

// asSent is the message as SES sends it: its own Message-ID in place of the sender's, Bcc and SES
// control headers removed, Date and From added when missing; every other byte unchanged.
func (m *rawMessage) asSent(rw rawRewrite) []byte {
	var b bytes.Buffer
	b.Grow(len(m.body) + 1024)
	replaced := false
	for _, f := range m.fields {
		lname := strings.ToLower(f.name)
		switch {
		case lname == "bcc" || sesControlHeaders[lname]:
			continue
		case lname == "message-id":
			if !replaced {
				b.WriteString("Message-ID: " + rw.messageID + m.eol)
				replaced = true
			}
			continue
		}
		b.Write(f.raw)
	}
	if !replaced {
		b.WriteString("Message-ID: " + rw.messageID + m.eol)
	}
	if !m.has("Date") {
		b.WriteString("Date: " + rw.date + m.eol)
	}
	if !m.has("From") && rw.from != "" {
		b.WriteString("From: " + rw.from + m.eol)
	}
	b.Write(m.sep)
	b.Write(m.body)
	return b.Bytes()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

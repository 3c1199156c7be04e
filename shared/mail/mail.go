// Package mail reads raw RFC 5322 messages as a stream and reports what Mailroom needs from them:
// addresses, subject, threading ids, MIME structure, attachments and what was wrong with the message.
// It never rejects mail: whatever arrives is described as well as it can be and its faults are listed.
package mail

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Message is what Parse found in one raw message.
type Message struct {
	MessageID         string            `json:"messageId,omitempty"` // without angle brackets
	InReplyTo         []string          `json:"inReplyTo,omitempty"`
	References        []string          `json:"references,omitempty"`
	From              []Address         `json:"from,omitempty"`
	Sender            *Address          `json:"sender,omitempty"`
	ReplyTo           []Address         `json:"replyTo,omitempty"`
	To                []Address         `json:"to,omitempty"`
	Cc                []Address         `json:"cc,omitempty"`
	Bcc               []Address         `json:"bcc,omitempty"`
	Subject           string            `json:"subject"`
	Date              time.Time         `json:"date,omitzero"` // UTC; zero when absent or unreadable
	ContentType       string            `json:"contentType"`   // top-level media type, lower case
	ContentTypeParams map[string]string `json:"contentTypeParams,omitempty"`
	ContentLanguage   string            `json:"contentLanguage,omitempty"`
	Header            Header            `json:"header"` // top-level fields, bounded by maxHeaderFields and maxHeaderBytes
	Size              int64             `json:"size"`   // raw bytes read
	SHA256            string            `json:"sha256"` // hex SHA-256 of the raw bytes
	LineEnding        string            `json:"lineEnding"`
	HasText           bool              `json:"hasText"`
	HasHTML           bool              `json:"hasHtml"`
	Attachments       []Attachment      `json:"attachments,omitempty"`
	Problems          []Problem         `json:"problems,omitempty"`
}

// Attachment is one attached file or message, or one file inside a TNEF (winmail.dat) part.
type Attachment struct {
	// Part is the MIME part path: "2", "2.1"; "3/1.2" inside the message attached as part 3;
	// "4/tnef:1" for the first file inside the TNEF part 4.
	Part        string `json:"part"`
	Filename    string `json:"filename,omitempty"` // decoded to UTF-8
	ContentType string `json:"contentType"`
	Disposition string `json:"disposition,omitempty"` // "attachment", "inline" or ""
	ContentID   string `json:"contentId,omitempty"`
	Size        int64  `json:"size"`   // decoded bytes
	SHA256      string `json:"sha256"` // hex SHA-256 of the decoded bytes
}

// Problem is one thing wrong with a message. Code is a stable kebab-case identifier; Part is the
// MIME part path, "" for the message header.
type Problem struct {
	Code   string `json:"code"`
	Part   string `json:"part,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Bounds that keep memory flat whatever a message contains.
const (
	maxFieldLen     = 64 << 10 // one unfolded header field
	maxHeaderFields = 1000     // fields kept in Message.Header
	maxHeaderBytes  = 256 << 10
	maxParts        = 1000 // MIME entities in the whole message, attached messages included
	maxDepth        = 20   // nesting of multiparts and attached messages
	maxMessageDepth = 8    // attached messages inside attached messages: each level hashes its content again
	maxProblems     = 100
	maxGarbage      = 64 << 10 // bytes skipped looking for the first header field
	maxTNEF         = 25 << 20 // a TNEF part must be decoded in memory
	maxIDs          = 1000     // ids kept from one References header
	topBufSize      = 64 << 10 // longest line seen whole at the top level; longer ones come in pieces
	childBufSize    = 16 << 10 // the same inside an attached message
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, topBufSize); return &b }}

// Parse reads one raw RFC 5322 message from r to the end and reports what it found. Memory stays
// bounded whatever the message size. Malformed input is never an error: problems are listed in
// Message.Problems. The error is non-nil only when reading r fails.
func Parse(r io.Reader) (*Message, error) {
	msg := &Message{Header: make(Header, 0, 24)}
	run := &run{msg: msg}
	bufp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bufp)
	p := newParser(run, "", 0, true, *bufp)
	sum := sha256.New()
	for {
		space := p.buf[p.w:]
		if run.failed {
			space = *bufp // the parser gave up: only count and hash the rest
		}
		n, err := r.Read(space)
		if n > 0 {
			sum.Write(space[:n])
			msg.Size += int64(n)
			if !run.failed {
				p.w += n
				run.guard(func() { p.scan(false) })
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mail: reading message: %w", err)
		}
	}
	run.guard(p.close)
	p.release()
	msg.SHA256 = hex.EncodeToString(sum.Sum(nil))
	msg.LineEnding = lineEnding(p.counts)
	run.guard(run.finish)
	return msg, nil
}

// guard runs one step of the parse. A bug must not cost the message: the archive still gets its
// size, hash and what was read so far, with a problem that says parsing stopped.
func (r *run) guard(step func()) {
	if r.failed {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.failed = true
			r.msg.Problems = append(r.msg.Problems, Problem{Code: "parse-failed", Detail: fmt.Sprint("internal error: ", v)})
		}
	}()
	step()
}

func lineEnding(counts [4]int64) string {
	var kinds []string
	for t, name := range [...]string{termLF: "LF", termCRLF: "CRLF", termCR: "CR"} {
		if name != "" && counts[t] > 0 {
			kinds = append(kinds, name)
		}
	}
	switch len(kinds) {
	case 0:
		return ""
	case 1:
		return kinds[0]
	}
	return "mixed"
}

// run is the state one Parse shares between the message and the messages attached to it.
type run struct {
	msg         *Message
	parts       int
	headerBytes int
	headerFull  bool
	kept        [len(interpretedNames)]int // fields kept per interpreted name
	noHeader    bool                       // the message had no header field at all
	failed      bool                       // a bug stopped the parse
	declared    *charset                   // charset the message declares, for raw 8-bit header text
	declName    string
	problems    []Problem
}

func (r *run) declare(c *charset, label string) {
	r.declared, r.declName = c, strings.ToLower(strings.Trim(label, `"' `))
	if c == windows1252 {
		r.declName = "windows-1252"
	}
}

func (r *run) problem(code, part, detail string) {
	addProblem(&r.problems, Problem{Code: code, Part: part, Detail: detail})
}

// addProblem appends p unless the list already has it or is full.
func addProblem(list *[]Problem, p Problem) {
	for _, q := range *list {
		if q == p {
			return
		}
	}
	switch {
	case len(*list) < maxProblems:
		*list = append(*list, p)
	case len(*list) == maxProblems:
		*list = append(*list, Problem{Code: "too-many-problems", Detail: fmt.Sprintf("only the first %d are listed", maxProblems)})
	}
}

// addHeader keeps a top-level field. Past the bounds only the fields finish reads are kept, and
// only their first few occurrences, so a header bomb cannot hide From or Subject.
func (r *run) addHeader(name, value []byte) {
	m := r.msg
	size := len(name) + len(value)
	known := -1
	for i, k := range interpreted {
		if len(k) == len(name) && strings.EqualFold(k, string(name)) {
			known = i
			break
		}
	}
	if len(m.Header) >= maxHeaderFields || r.headerBytes+size > maxHeaderBytes {
		if known < 0 || r.kept[known] >= 3 {
			if r.headerFull {
				return
			}
			r.headerFull = true
			r.problem("too-many-header-fields", "", fmt.Sprintf("header larger than %d fields or %d KiB; the rest is not kept", maxHeaderFields, maxHeaderBytes>>10))
			return
		}
	}
	if known >= 0 {
		r.kept[known]++
	}
	r.headerBytes += size
	m.Header = append(m.Header, Field{Name: fieldName(name), Value: string(value)})
}

// interpreted are the header fields finish turns into Message fields.
var interpreted = interpretedNames[:]

var interpretedNames = [...]string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date",
	"Message-ID", "In-Reply-To", "References", "Content-Type", "Content-Language", "MIME-Version"}

// commonNames interns header names so that reading a header does not allocate one string per name.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range append(interpreted, "Received", "Return-Path", "Delivered-To", "DKIM-Signature",
		"Authentication-Results", "ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results",
		"X-Mailer", "User-Agent", "Content-Transfer-Encoding", "Content-Disposition", "Content-ID",
		"List-Id", "List-Unsubscribe", "Precedence", "Auto-Submitted", "X-Original-To",
		"Thread-Topic", "Thread-Index", "X-MS-Has-Attach", "X-Priority", "Importance",
		"Received-SPF", "X-Spam-Status", "Message-Id", "Mime-Version", "CC") {
		m[n] = n
	}
	return m
}()

func fieldName(b []byte) string {
	if n, ok := commonNames[string(b)]; ok {
		return n
	}
	return string(b)
}

// finish turns the top-level header into Message fields once the whole message is read, when
// the charset that raw 8-bit header text most likely uses is known.
func (r *run) finish() {
	m := r.msg
	fallback, fallbackName := rawFallback(r.declared, r.declName)
	var probs []Problem
	report := func(code, detail string) {
		addProblem(&probs, Problem{Code: code, Detail: detail})
	}
	if m.ContentType == "" {
		m.ContentType = "text/plain"
	}
	if !r.noHeader {
		// Fields are read from the raw values: raw 8-bit bytes inside an encoded word belong to
		// the word's charset, not to the fallback.
		r.interpret(fallback, report)
	}
	var rawFields []string
	for i := range m.Header {
		f := &m.Header[i]
		if v, ok := decodeText(f.Value, fallback); !ok {
			f.Value = v
			if len(rawFields) < 5 && !contains(rawFields, f.Name) {
				rawFields = append(rawFields, f.Name)
			}
		}
	}
	if len(rawFields) > 0 {
		probs = append([]Problem{{Code: "raw-8bit-header", Detail: fmt.Sprintf("unencoded non-UTF-8 text in %s, read as %s", strings.Join(rawFields, ", "), fallbackName)}}, probs...)
	}
	for _, p := range r.problems {
		addProblem(&probs, p)
	}
	if len(probs) > 0 {
		m.Problems = probs
	}
}

func (r *run) interpret(fallback *charset, report func(code, detail string)) {
	m := r.msg
	h := m.Header
	d := &wordDecoder{fallback: fallback, problem: report}
	text := func(s string) string {
		s, _ = decodeText(s, fallback)
		return s
	}

	ids := func(name string) []string {
		list := msgIDs(strings.Join(h.Values(name), " "))
		for i := range list {
			list[i] = text(list[i])
		}
		return list
	}
	if v := h.Get("Message-ID"); strings.TrimSpace(v) != "" {
		if ids := ids("Message-ID"); len(ids) > 0 {
			m.MessageID = ids[0]
		} else if id := strings.TrimSpace(v); !strings.ContainsAny(id, " \t") {
			m.MessageID = text(id)
		} else {
			report("bad-message-id", quote(v))
		}
	} else {
		report("missing-message-id", "")
	}
	m.InReplyTo = ids("In-Reply-To")
	m.References = ids("References")

	addrs := func(name string) []Address {
		var list []Address
		d.field = name
		for _, v := range h.Values(name) {
			list = append(list, parseAddressList(v, d, func(s string) {
				report("bad-address", name+": "+s)
			})...)
		}
		for i := range list {
			list[i].Address = text(list[i].Address)
		}
		return list
	}
	m.From = addrs("From")
	if !h.has("From") {
		report("missing-from", "")
	}
	if s := addrs("Sender"); len(s) > 0 {
		m.Sender = &s[0]
	}
	m.ReplyTo = addrs("Reply-To")
	m.To = addrs("To")
	m.Cc = addrs("Cc")
	m.Bcc = addrs("Bcc")

	d.field = "Subject"
	m.Subject = strings.TrimSpace(d.decode(h.Get("Subject")))

	if v := h.Get("Date"); strings.TrimSpace(v) == "" {
		report("missing-date", "")
	} else if t, err := ParseDate(v); err != nil {
		report("bad-date", quote(v))
	} else {
		m.Date = t
	}
	m.ContentLanguage = text(strings.TrimSpace(h.Get("Content-Language")))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// MessageIDs extracts the message ids, without angle brackets, of a Message-ID, In-Reply-To or
// References value, as Parse does.
func MessageIDs(v string) []string { return msgIDs(v) }

// msgIDs extracts message ids, without angle brackets, from Message-ID, In-Reply-To or References.
// Ids written without brackets are accepted when they contain "@".
func msgIDs(v string) []string {
	var ids []string
	rest := v
	for len(ids) < maxIDs {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(rest[i+1 : i+j]); id != "" && !strings.ContainsAny(id, " \t") {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) > 0 {
		return ids
	}
	for _, f := range strings.FieldsFunc(stripComments(v), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		f = strings.Trim(f, "<>")
		if strings.Contains(f, "@") && len(ids) < maxIDs {
			ids = append(ids, f)
		}
	}
	return ids
}

// ReturnPath is the envelope sender a delivering server recorded in Return-Path (RFC 5321
// §4.4): "" for the null sender "<>" of bounces. ok is false when the message has no
// Return-Path, as mail not yet delivered has not.
func (m *Message) ReturnPath() (addr string, ok bool) {
	vs := m.Header.Values("Return-Path")
	if len(vs) == 0 {
		return "", false
	}
	list, _ := ParseAddressList(vs[0])
	if len(list) == 0 {
		return "", true
	}
	return list[0].Address, true
}

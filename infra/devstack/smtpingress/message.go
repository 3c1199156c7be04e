package smtpingress

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // legacy charsets in RFC 2047 subjects
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

const (
	// memoryLimit is how much of a message is held in memory before it moves to a temporary file.
	memoryLimit = 4 << 20
	// maxHeaderBlock bounds how much of a message is parsed as its header.
	maxHeaderBlock = 256 << 10
	// maxEventHeaders is the size past which SES stops listing headers and sets headersTruncated.
	maxEventHeaders = 10 << 10
)

// buffered is a received message, buffered once because S3 needs its length before the first byte.
type buffered struct {
	io.ReaderAt
	size int64
	file *os.File // set when the message outgrew memory
}

func spool(r io.Reader, max int64) (*buffered, error) {
	lr := &io.LimitedReader{R: r, N: max + 1}
	var buf bytes.Buffer
	n, err := io.CopyN(&buf, lr, memoryLimit)
	if err == io.EOF {
		if n > max {
			return nil, errTooLarge
		}
		return &buffered{ReaderAt: bytes.NewReader(buf.Bytes()), size: n}, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "smtpingress-*.eml")
	if err != nil {
		return nil, err
	}
	m := &buffered{ReaderAt: f, file: f}
	if _, err = f.Write(buf.Bytes()); err == nil {
		var rest int64
		rest, err = io.Copy(f, lr)
		m.size = n + rest
	}
	if err == nil && m.size > max {
		err = errTooLarge
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close removes the temporary file, if any: once stored, the object is the copy that counts.
func (m *buffered) Close() error {
	if m.file == nil {
		return nil
	}
	m.file.Close()
	return os.Remove(m.file.Name())
}

// head is the part of the message parsed as its header.
func (m *buffered) head() *io.SectionReader {
	return io.NewSectionReader(m, 0, min(m.size, maxHeaderBlock))
}

// lineEnding is the message's own line ending, so the headers put on top match the sender's bytes
// (CRLF over SMTP; bare LF or bare CR in files given to Receive). A parser reading the stored
// message then sees one convention, not headers in one and the message in another.
func (m *buffered) lineEnding() string {
	first := make([]byte, 1024)
	n, _ := m.ReadAt(first, 0)
	i := bytes.IndexAny(first[:n], "\r\n")
	switch {
	case i < 0 || first[i] == '\r' && i+1 < n && first[i+1] == '\n':
		return "\r\n"
	case first[i] == '\r' && i+1 < n:
		return "\r"
	case first[i] == '\n':
		return "\n"
	}
	return "\r\n"
}

// joined reads head followed by the message as one seekable object: the S3 SDK seeks the body to
// sign it when the endpoint is plain HTTP, as the local one is.
func joined(head []byte, m *buffered) *io.SectionReader {
	return io.NewSectionReader(concat{head, m}, 0, int64(len(head))+m.size)
}

type concat struct {
	head []byte
	body io.ReaderAt
}

func (c concat) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(c.head)) {
		n = copy(p, c.head[off:])
		if n == len(p) {
			return n, nil
		}
	}
	m, err := c.body.ReadAt(p[n:], off+int64(n)-int64(len(c.head)))
	return n + m, err
}

// header is what the event needs from a header block.
type header struct {
	fields   []events.SimpleEmailHeader
	h        mail.Header
	complete bool // false when the block ran past maxHeaderBlock
}

// readHeader parses a header block up to the blank line that ends it, or as far as it is well
// formed: what comes after a malformed line is left to the inbound function's own parser.
func readHeader(r io.Reader) header {
	lr := &io.LimitedReader{R: r, N: maxHeaderBlock}
	h, err := textproto.ReadHeader(bufio.NewReader(lr))
	out := header{h: mail.Header{Header: message.Header{Header: h}}, complete: err == nil || lr.N > 0}
	for f := h.Fields(); f.Next(); {
		// SES lists names as the sender wrote them; the parser's keys are canonicalised.
		name := f.Key()
		if raw, err := f.Raw(); err == nil {
			if i := bytes.IndexByte(raw, ':'); i > 0 {
				name = string(bytes.TrimRight(raw[:i], " \t"))
			}
		}
		out.fields = append(out.fields, events.SimpleEmailHeader{Name: name, Value: f.Value()})
	}
	return out
}

// receiptHeaders are the fields SES puts on top of a message it receives, in SES's order and
// folding. SES also signs them (X-SES-DKIM-SIGNATURE); nothing reads that signature, so it is
// left out.
func (in *Ingress) receiptHeaders(id string, at time.Time, env envelope, orig header, eol string) []byte {
	v := in.verdicts
	fromDomain := ""
	if addrs, err := orig.h.AddressList("From"); err == nil && len(addrs) > 0 {
		fromDomain = domainOf(addrs[0].Address)
	}
	// SPF checks the HELO name when the envelope sender is null (a bounce).
	spfDomain := domainOf(env.from)
	if spfDomain == "" {
		spfDomain = env.helo
	}
	host := "unknown"
	if env.ip == "127.0.0.1" || env.ip == "::1" {
		host = "localhost"
	}
	spf := spfResult(v.SPF, spfDomain, env.ip) + " client-ip=" + env.ip + ";"
	if env.from != "" {
		spf += " envelope-from=" + env.from + ";"
	}
	spf += " helo=" + env.helo + ";"
	receipt := sha256.Sum256([]byte(id))

	var b strings.Builder
	field := func(name string, lines ...string) {
		b.WriteString(name + ": " + strings.Join(lines, eol+" ") + eol)
	}
	field("Return-Path", "<"+env.from+">")
	// Only the first envelope recipient is named, however many there are; code that forwards the
	// raw message must remember this field can name a Bcc recipient.
	field("Received", fmt.Sprintf("from %s (%s [%s])", env.helo, host, env.ip),
		"by inbound-smtp."+in.region+".amazonaws.com with SMTP id "+id,
		"for "+env.to[0]+";",
		at.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700 (MST)"))
	field("X-SES-Spam-Verdict", string(v.Spam))
	field("X-SES-Virus-Verdict", string(v.Virus))
	field("Received-SPF", spf)
	field("Authentication-Results", "amazonses.com;", "spf="+spf,
		dkimResult(v.DKIM, fromDomain)+";", dmarcResult(v.DMARC, fromDomain)+";")
	// SES's value is opaque receipt data; it only has to be there and stable for one message.
	field("X-SES-RECEIPT", base64.StdEncoding.EncodeToString(receipt[:]))
	return []byte(b.String())
}

func spfResult(v Verdict, domain, ip string) string {
	switch v {
	case Pass:
		return fmt.Sprintf("pass (spfCheck: domain of %s designates %s as permitted sender)", domain, ip)
	case Fail:
		return fmt.Sprintf("fail (spfCheck: domain of %s does not designate %s as permitted sender)", domain, ip)
	case ProcessingFailed:
		return fmt.Sprintf("temperror (spfCheck: error in processing during lookup of %s)", domain)
	default:
		return fmt.Sprintf("none (spfCheck: domain of %s does not designate permitted sender hosts)", domain)
	}
}

func dkimResult(v Verdict, fromDomain string) string {
	switch v {
	case Pass:
		return "dkim=pass header.i=@" + fromDomain
	case Fail:
		return "dkim=fail header.i=@" + fromDomain
	case ProcessingFailed:
		return "dkim=temperror"
	default:
		return "dkim=none"
	}
}

func dmarcResult(v Verdict, fromDomain string) string {
	res := map[Verdict]string{Pass: "pass", Fail: "fail", ProcessingFailed: "temperror"}[v]
	if res == "" {
		res = "none"
	}
	return "dmarc=" + res + " header.from=" + fromDomain
}

// event builds the record SES's Lambda action sends. headers are the stored message's fields in
// order; orig is the sender's own header block, where the common headers come from.
func (in *Ingress) event(id string, env envelope, receivedAt, actedAt time.Time, headers []events.SimpleEmailHeader, orig header) events.SimpleEmailEvent {
	receivedAt = receivedAt.UTC().Truncate(time.Millisecond)
	actedAt = actedAt.UTC().Truncate(time.Millisecond)
	listed, truncated := limitHeaders(headers)
	subject, err := orig.h.Subject()
	if err != nil {
		subject = orig.h.Get("Subject") // an unknown charset: the words as written beat nothing
	}
	v := in.verdicts
	receipt := events.SimpleEmailReceipt{
		Timestamp:            actedAt,
		ProcessingTimeMillis: actedAt.Sub(receivedAt).Milliseconds(),
		Recipients:           env.to,
		SpamVerdict:          events.SimpleEmailVerdict{Status: string(v.Spam)},
		VirusVerdict:         events.SimpleEmailVerdict{Status: string(v.Virus)},
		SPFVerdict:           events.SimpleEmailVerdict{Status: string(v.SPF)},
		DKIMVerdict:          events.SimpleEmailVerdict{Status: string(v.DKIM)},
		DMARCVerdict:         events.SimpleEmailVerdict{Status: string(v.DMARC)},
		Action: events.SimpleEmailReceiptAction{
			Type:           "Lambda",
			FunctionARN:    in.arn,
			InvocationType: "Event",
		},
	}
	if v.DMARC == Fail {
		receipt.DMARCPolicy = v.DMARCPolicy
	}
	return events.SimpleEmailEvent{Records: []events.SimpleEmailRecord{{
		EventSource:  "aws:ses",
		EventVersion: "1.0",
		SES: events.SimpleEmailService{
			Mail: events.SimpleEmailMessage{
				Timestamp:        receivedAt,
				Source:           env.from,
				MessageID:        id,
				Destination:      env.to,
				HeadersTruncated: truncated || !orig.complete,
				Headers:          listed,
				CommonHeaders: events.SimpleEmailCommonHeaders{
					ReturnPath: env.from,
					From:       addressList(orig.h.Get("From")),
					Date:       orig.h.Get("Date"),
					To:         addressList(orig.h.Get("To")),
					Cc:         addressList(orig.h.Get("Cc")),
					MessageID:  orig.h.Get("Message-Id"),
					Subject:    subject,
				},
			},
			Receipt: receipt,
		},
	}}}
}

// limitHeaders keeps the leading headers that fit in SES's 10 KB.
func limitHeaders(hs []events.SimpleEmailHeader) ([]events.SimpleEmailHeader, bool) {
	size := 0
	for i, h := range hs {
		size += len(h.Name) + len(": ") + len(h.Value)
		if size > maxEventHeaders {
			return hs[:i], true
		}
	}
	return hs, false
}

// addressList splits an address header into its addresses as written, display names and all, at
// the commas that are not inside quotes, angle brackets or comments.
func addressList(v string) []string {
	var out []string
	depth, quoted, escaped, start := 0, false, false, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<' || c == '(':
			depth++
		case (c == '>' || c == ')') && depth > 0:
			depth--
		case c == ',' && depth == 0:
			if a := strings.TrimSpace(v[start:i]); a != "" {
				out = append(out, a)
			}
			start = i + 1
		}
	}
	if a := strings.TrimSpace(v[start:]); a != "" {
		out = append(out, a)
	}
	return out
}

func domainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}

package seslocal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"
)

type simpleParams struct {
	from        string
	to, cc      []string
	replyTo     []string
	subject     textContent
	text, html  *textContent
	headers     []struct{ Name, Value string }
	attachments []attachment
	messageID   string
	date        time.Time
}

// part is a MIME entity under construction; header order is kept as written.
type part struct {
	header [][2]string
	body   []byte  // leaf body, already transfer-encoded with CRLF line endings
	parts  []*part // multipart children
	sub    string  // multipart subtype
}

// reservedHeaders are the fields SES writes itself for Simple content; letting Headers set them
// would produce a message with two From or two Content-Type fields.
var reservedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "reply-to": true, "subject": true,
	"date": true, "message-id": true, "mime-version": true, "content-type": true,
	"content-transfer-encoding": true, "return-path": true, "sender": true,
}

// composeSimple builds the message SES sends for Simple content: text, html or
// multipart/alternative of both, wrapped in multipart/related for inline attachments and
// multipart/mixed for the others; headers 7-bit with RFC 2047 where needed; CRLF throughout.
func composeSimple(p simpleParams) ([]byte, *apiError) {
	subject, aerr := encodeSubject(p.subject)
	if aerr != nil {
		return nil, aerr
	}
	var extra [][2]string
	for _, h := range p.headers {
		if aerr := checkCustomHeader(h.Name, h.Value); aerr != nil {
			return nil, aerr
		}
		extra = append(extra, [2]string{h.Name, h.Value})
	}

	var bodies []*part
	if p.text != nil {
		t, aerr := textPart("plain", "Content.Simple.Body.Text", p.text)
		if aerr != nil {
			return nil, aerr
		}
		bodies = append(bodies, t)
	}
	if p.html != nil {
		h, aerr := textPart("html", "Content.Simple.Body.Html", p.html)
		if aerr != nil {
			return nil, aerr
		}
		bodies = append(bodies, h)
	}
	content := bodies[0]
	if len(bodies) == 2 {
		content = &part{sub: "alternative", parts: bodies}
	}
	var inline, attached []*part
	for i, a := range p.attachments {
		ap, isInline, aerr := attachmentPart(i, a)
		if aerr != nil {
			return nil, aerr
		}
		if isInline {
			inline = append(inline, ap)
		} else {
			attached = append(attached, ap)
		}
	}
	if len(inline) > 0 {
		content = &part{sub: "related", parts: append([]*part{content}, inline...)}
	}
	if len(attached) > 0 {
		content = &part{sub: "mixed", parts: append([]*part{content}, attached...)}
	}

	var b bytes.Buffer
	writeField(&b, "Date", formatDate(p.date))
	writeField(&b, "From", p.from)
	if len(p.replyTo) > 0 {
		writeField(&b, "Reply-To", strings.Join(trimAll(p.replyTo), ", "))
	}
	if len(p.to) > 0 {
		writeField(&b, "To", strings.Join(trimAll(p.to), ", "))
	}
	if len(p.cc) > 0 {
		writeField(&b, "Cc", strings.Join(trimAll(p.cc), ", "))
	}
	writeField(&b, "Message-ID", p.messageID)
	writeField(&b, "Subject", subject)
	for _, h := range extra {
		writeField(&b, h[0], h[1])
	}
	writeField(&b, "MIME-Version", "1.0")
	content.writeTo(&b, &boundaries{seed: p.messageID})
	return b.Bytes(), nil
}

// boundaries derives multipart boundaries from the Message-ID, so that the same request gives the
// same bytes (golden tests) while two messages never share one. "=_" cannot occur in
// quoted-printable or base64 output, so a boundary cannot collide with an encoded body.
type boundaries struct {
	seed string
	n    int
}

func (g *boundaries) next() string {
	g.n++
	sum := sha256.Sum256([]byte(g.seed))
	return "----=_Part_" + hex.EncodeToString(sum[:8]) + "_" + strconv.Itoa(g.n)
}

func (p *part) writeTo(b *bytes.Buffer, g *boundaries) {
	if p.sub == "" {
		for _, h := range p.header {
			writeField(b, h[0], h[1])
		}
		b.WriteString("\r\n")
		b.Write(p.body)
		return
	}
	boundary := g.next()
	writeField(b, "Content-Type", mime.FormatMediaType("multipart/"+p.sub, map[string]string{"boundary": boundary}))
	b.WriteString("\r\n")
	for _, c := range p.parts {
		b.WriteString("--" + boundary + "\r\n")
		c.writeTo(b, g)
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
}

// writeField folds at spaces to keep lines within 78 characters where the value allows it.
func writeField(b *bytes.Buffer, name, value string) {
	line := name + ":"
	for _, word := range strings.Split(value, " ") {
		if word != "" && len(line)+1+len(word) > 78 && line != name+":" {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
	}
	b.WriteString(line + "\r\n")
}

func trimAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// checkCustomHeader applies SES's rules for Content.Simple.Headers.
func checkCustomHeader(name, value string) *apiError {
	if strings.ContainsAny(name+value, "\r\n") {
		return badRequest("Header %q contains a line break; header injection is not allowed.", truncate(name, 40))
	}
	if !validHeaderName(name) || len(name) > 126 {
		return badRequest("Illegal header name %q: printable ASCII except ':', at most 126 characters.", truncate(name, 40))
	}
	for i := 0; i < len(value); i++ {
		if (value[i] < 32 && value[i] != '\t') || value[i] > 126 {
			return badRequest("Header %s value must be printable ASCII.", name)
		}
	}
	if len(value) > 995 || len(name)+len(value) > 996 {
		return badRequest("Header %s is too long: value at most 995 characters, name and value at most 996.", name)
	}
	if reservedHeaders[strings.ToLower(name)] {
		return badRequest("Header %s is set by SES and cannot be given in Content.Simple.Headers.", name)
	}
	return nil
}

// encodeSubject checks for injected line breaks and RFC 2047-encodes a subject that is not plain
// printable ASCII, in the requested charset.
func encodeSubject(c textContent) (string, *apiError) {
	s := *c.Data
	if strings.ContainsAny(s, "\r\n") {
		return "", badRequest("Subject contains a line break; header injection is not allowed.")
	}
	if printableASCII(s) {
		return s, nil
	}
	cs := charsetName(c.Charset)
	var enc encoding.Encoding
	if isUTF8(cs) {
		if !utf8.ValidString(s) {
			return "", badRequest("Subject is not valid UTF-8.")
		}
	} else {
		var aerr *apiError
		if enc, aerr = lookupCharset("Subject", cs); aerr != nil {
			return "", aerr
		}
	}
	words, err := encodedWords(s, cs, enc, 75-len("Subject: "))
	if err != nil {
		return "", badRequest("Subject: %v", err)
	}
	return strings.Join(words, " "), nil
}

// encodedWords splits s into RFC 2047 encoded-words of at most maxLen characters, each holding
// whole characters (mime's encoder only ensures that for UTF-8, and its words do not fit after
// "Subject: " within 76 columns). Q encoding keeps mostly-Latin text readable, B is shorter for
// the rest. enc nil means UTF-8.
func encodedWords(s, cs string, enc encoding.Encoding, maxLen int) ([]string, error) {
	useQ := mostlyASCII(s)
	letter := "B"
	if useQ {
		letter = "Q"
	}
	prefix := "=?" + cs + "?" + letter + "?"
	budget := maxLen - len(prefix) - len("?=")
	encLen := func(b []byte) int {
		if useQ {
			return len(qEncode(b))
		}
		return base64.StdEncoding.EncodedLen(len(b))
	}
	var words []string
	var chunk []byte
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		if useQ {
			words = append(words, prefix+qEncode(chunk)+"?=")
		} else {
			words = append(words, prefix+base64.StdEncoding.EncodeToString(chunk)+"?=")
		}
		chunk = nil
	}
	for _, r := range s {
		rb := []byte(string(r))
		if enc != nil {
			var err error
			if rb, err = enc.NewEncoder().Bytes(rb); err != nil {
				return nil, fmt.Errorf("%q cannot be represented in charset %s", r, cs)
			}
		}
		if encLen(append(chunk[:len(chunk):len(chunk)], rb...)) > budget {
			flush()
		}
		chunk = append(chunk, rb...)
	}
	flush()
	return words, nil
}

// qEncode is RFC 2047's Q encoding for unstructured text such as Subject.
func qEncode(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == ' ':
			sb.WriteByte('_')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("!*+-/", c) >= 0:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, "=%02X", c)
		}
	}
	return sb.String()
}

// textPart encodes a body in its charset and picks the transfer encoding SES would: 7bit for short
// ASCII lines, quoted-printable for mostly ASCII text, base64 for the rest (CJK, for instance).
func textPart(subtype, field string, c *textContent) (*part, *apiError) {
	if c.Data == nil {
		return nil, badRequest("%s.Data is required.", field)
	}
	cs := charsetName(c.Charset)
	text := normalizeCRLF(*c.Data)
	data := []byte(text)
	if !isUTF8(cs) {
		enc, aerr := lookupCharset(field, cs)
		if aerr != nil {
			return nil, aerr
		}
		var err error
		if data, err = enc.NewEncoder().Bytes(data); err != nil {
			return nil, badRequest("%s cannot be represented in charset %s: %v", field, cs, err)
		}
	} else if !utf8.Valid(data) {
		return nil, badRequest("%s is not valid UTF-8.", field)
	}
	p := &part{header: [][2]string{{"Content-Type", mime.FormatMediaType("text/"+subtype, map[string]string{"charset": cs})}}}
	p.header, p.body = encodeBody(p.header, data, true)
	return p, nil
}

// encodeBody chooses and applies a transfer encoding. text says line breaks are text (already
// CRLF) rather than bytes to keep.
func encodeBody(h [][2]string, data []byte, text bool) ([][2]string, []byte) {
	var cte string
	var out bytes.Buffer
	switch {
	case text && sevenBitSafe(data):
		cte = "7bit"
		out.Write(data)
	case text && nonASCIIShare(data) < 0.3:
		cte = "quoted-printable"
		qp := quotedprintable.NewWriter(&out)
		qp.Write(data)
		qp.Close()
	default:
		cte = "base64"
		writeBase64Lines(&out, data)
	}
	return append(h, [2]string{"Content-Transfer-Encoding", cte}), out.Bytes()
}

func writeBase64Lines(out *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	if enc != "" {
		out.WriteString(enc + "\r\n")
	}
}

func attachmentPart(i int, a attachment) (*part, bool, *apiError) {
	field := "Content.Simple.Attachments[" + strconv.Itoa(i) + "]"
	if a.FileName == nil || *a.FileName == "" {
		return nil, false, badRequest("%s.FileName is required.", field)
	}
	for _, v := range []string{*a.FileName, a.ContentDescription, a.ContentId, a.ContentType} {
		if strings.ContainsAny(v, "\r\n") {
			return nil, false, badRequest("%s contains a line break; header injection is not allowed.", field)
		}
	}
	data, err := base64.StdEncoding.DecodeString(a.RawContent)
	if err != nil {
		return nil, false, badRequest("%s.RawContent is not valid base64: %v", field, err)
	}
	ctype := a.ContentType
	if ctype == "" {
		ctype = mime.TypeByExtension(extOf(*a.FileName))
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return nil, false, badRequest("%s.ContentType %q: %v", field, ctype, err)
	}
	params["name"] = *a.FileName
	disp := "attachment"
	switch a.ContentDisposition {
	case "", "ATTACHMENT":
	case "INLINE":
		disp = "inline"
	default:
		return nil, false, badRequest("%s.ContentDisposition must be ATTACHMENT or INLINE.", field)
	}
	p := &part{header: [][2]string{
		{"Content-Type", mime.FormatMediaType(mt, params)},
		{"Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": *a.FileName})},
	}}
	if a.ContentId != "" {
		p.header = append(p.header, [2]string{"Content-ID", "<" + strings.Trim(a.ContentId, "<>") + ">"})
	}
	if a.ContentDescription != "" {
		if !printableASCII(a.ContentDescription) {
			p.header = append(p.header, [2]string{"Content-Description", mime.QEncoding.Encode("UTF-8", a.ContentDescription)})
		} else {
			p.header = append(p.header, [2]string{"Content-Description", a.ContentDescription})
		}
	}
	switch a.ContentTransferEncoding {
	case "", "BASE64":
		p.header = append(p.header, [2]string{"Content-Transfer-Encoding", "base64"})
		var out bytes.Buffer
		writeBase64Lines(&out, data)
		p.body = out.Bytes()
	case "QUOTED_PRINTABLE":
		p.header = append(p.header, [2]string{"Content-Transfer-Encoding", "quoted-printable"})
		var out bytes.Buffer
		qp := quotedprintable.NewWriter(&out)
		qp.Binary = true // an attachment's line breaks are bytes to keep, not text to normalise
		qp.Write(data)
		qp.Close()
		p.body = out.Bytes()
	case "SEVEN_BIT":
		data = []byte(normalizeCRLF(string(data)))
		if !sevenBitSafe(data) {
			return nil, false, badRequest("%s is not 7-bit text with lines of at most 998 characters; use BASE64.", field)
		}
		p.header = append(p.header, [2]string{"Content-Transfer-Encoding", "7bit"})
		p.body = data
	default:
		return nil, false, badRequest("%s.ContentTransferEncoding must be BASE64, QUOTED_PRINTABLE or SEVEN_BIT.", field)
	}
	return p, disp == "inline", nil
}

func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

// charsetName is the charset to label content with; SES treats a missing one as UTF-8 in practice.
func charsetName(p *string) string {
	if p == nil || strings.TrimSpace(*p) == "" {
		return "UTF-8"
	}
	return strings.TrimSpace(*p)
}

func isUTF8(cs string) bool {
	return strings.EqualFold(cs, "UTF-8") || strings.EqualFold(cs, "UTF8")
}

// asciiEncoding stands in for US-ASCII, which x/text has no encoder for.
type asciiEncoding struct{ encoding.Encoding }

func (asciiEncoding) NewEncoder() *encoding.Encoder {
	return &encoding.Encoder{Transformer: asciiOnly{}}
}

type asciiOnly struct{ transform.NopResetter }

func (asciiOnly) Transform(dst, src []byte, atEOF bool) (int, int, error) {
	n := min(len(dst), len(src))
	for i := 0; i < n; i++ {
		if src[i] >= 0x80 {
			return i, i, errors.New("not US-ASCII")
		}
		dst[i] = src[i]
	}
	if n < len(src) {
		return n, n, transform.ErrShortDst
	}
	return n, n, nil
}

func lookupCharset(field, cs string) (encoding.Encoding, *apiError) {
	if strings.EqualFold(cs, "US-ASCII") || strings.EqualFold(cs, "ASCII") {
		return asciiEncoding{}, nil
	}
	enc, err := ianaindex.MIME.Encoding(cs)
	if err != nil || enc == nil {
		enc, err = htmlindex.Get(cs)
	}
	if err != nil || enc == nil {
		return nil, badRequest("%s: unsupported charset %q.", field, cs)
	}
	return enc, nil
}

// normalizeCRLF turns every line break (LF, CR or CRLF) into CRLF, as SMTP requires.
func normalizeCRLF(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func sevenBitSafe(data []byte) bool {
	lineLen := 0
	for _, c := range data {
		if c == 0 || c >= 0x80 {
			return false
		}
		if c == '\n' {
			lineLen = 0
			continue
		}
		if lineLen++; lineLen > 998 {
			return false
		}
	}
	return true
}

func nonASCIIShare(data []byte) float64 {
	if len(data) == 0 {
		return 0
	}
	n := 0
	for _, c := range data {
		if c >= 0x80 {
			n++
		}
	}
	return float64(n) / float64(len(data))
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < 32 && s[i] != '\t') || s[i] > 126 {
			return false
		}
	}
	return true
}

func mostlyASCII(s string) bool { return nonASCIIShare([]byte(s)) < 0.3 }

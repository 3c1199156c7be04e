package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"strings"
	"sync"
	"unicode/utf8"
)

type transferEncoding uint8

const (
	encIdentity transferEncoding = iota // 7bit, 8bit, binary, and anything unknown
	encBase64
	encQP
)

// parseTransferEncoding reads Content-Transfer-Encoding, accepting the misspellings mailers use.
func parseTransferEncoding(v string) (enc transferEncoding, known bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, " \t;("); i >= 0 {
		v = v[:i]
	}
	switch v {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit", "7bits", "8bits":
		return encIdentity, true
	case "base64", "base-64":
		return encBase64, true
	case "quoted-printable", "quoted_printable", "quotedprintable", "quoted":
		return encQP, true
	}
	return encIdentity, false
}

// startBody reads the entity's Content-* fields and sets up its body: a multipart opens a frame,
// anything else becomes a leaf.
func (p *parser) startBody() {
	e := &p.ent
	fallback, _ := rawFallback(p.run.declared, "")
	d := p.wordDecoder(e.path, fallback)
	typ := e.defaultType
	var params map[string]string
	if e.hasCType {
		t, rest := mediaType(e.ctype)
		params = parseParams(rest, d)
		if c, ok := lookupCharset(params["charset"]); ok && d.raw {
			// Raw 8-bit parameter text is most likely in the part's own charset.
			fallback, _ = rawFallback(c, "")
			d = p.wordDecoder(e.path, fallback)
			params = parseParams(rest, d)
		}
		if validMediaType(t) {
			typ = t
		} else {
			p.problem("bad-content-type", e.path, quote(e.ctype))
			if strings.HasPrefix(t, "text") {
				typ = "text/plain"
			}
		}
	}
	if p.top && e.path == "" {
		p.run.msg.ContentType, p.run.msg.ContentTypeParams = typ, params
		if b, ok := params["boundary"]; ok && !utf8.ValidString(b) {
			shown := maps.Clone(params)
			shown["boundary"] = strings.ToValidUTF8(b, "\uFFFD")
			p.run.msg.ContentTypeParams = shown
		}
		if cs := params["charset"]; cs != "" {
			if c, ok := lookupCharset(cs); ok {
				p.run.declare(c, cs)
			}
		}
	}
	if strings.HasPrefix(typ, "multipart/") {
		if e.depth >= maxDepth {
			p.problem("too-deep", e.path, fmt.Sprintf("MIME nesting deeper than %d levels; the rest is not read", maxDepth))
			p.leaf = leaf{discard: true}
			p.state = stBody
			return
		}
		f := frame{
			boundary: []byte(strings.TrimRight(params["boundary"], " \t")),
			path:     e.path,
			depth:    e.depth,
			digest:   typ == "multipart/digest",
		}
		p.frames = append(p.frames, f)
		p.state, p.sink = stPreamble, sinkDiscard
		if len(f.boundary) == 0 {
			p.state = stSniff
		}
		return
	}
	p.startLeaf(typ, params, d)
}

func (p *parser) wordDecoder(path string, fallback *charset) *wordDecoder {
	id := p.partID(path)
	return &wordDecoder{fallback: fallback, problem: func(code, detail string) { p.run.problem(code, id, detail) }}
}

func (p *parser) startLeaf(typ string, params map[string]string, d *wordDecoder) {
	e := &p.ent
	path := e.path
	if path == "" {
		path = "1" // a message that is not multipart has one part
	}
	id := p.partID(path)
	p.state, p.sink = stBody, sinkDiscard
	p.leaf = leaf{discard: true}

	disp, rest := mediaType(e.cdisp)
	var dparams map[string]string
	if e.cdisp != "" {
		if c, ok := lookupCharset(params["charset"]); ok {
			d.fallback, _ = rawFallback(c, "")
		}
		dparams = parseParams(rest, d)
	}
	if d.raw {
		p.run.problem("raw-8bit-header", id, "unencoded non-UTF-8 text in a Content-Type or Content-Disposition parameter")
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	switch disp {
	case "attachment", "inline", "":
	default:
		disp = "attachment" // RFC 2183: an unknown disposition is treated as attachment
	}
	enc, known := parseTransferEncoding(e.cte)
	if !known {
		p.run.problem("unknown-transfer-encoding", id, quote(e.cte)+" read as 8bit")
	}
	rfc822 := typ == "message/rfc822" || typ == "message/global"
	isTNEF := typ == "application/ms-tnef" || typ == "application/vnd.ms-tnef" || strings.EqualFold(name, "winmail.dat")

	if !rfc822 && disp != "attachment" && name == "" && (typ == "text/plain" || typ == "text/html") {
		// A body part. Its text is not needed here, so it is not decoded.
		if p.top {
			if typ == "text/plain" {
				p.run.msg.HasText = true
			} else {
				p.run.msg.HasHTML = true
			}
		}
		if cs := params["charset"]; cs != "" {
			c, ok := lookupCharset(cs)
			switch {
			case !ok:
				p.run.problem("unknown-charset", id, "charset "+quote(cs))
			case p.top && p.run.declared == nil:
				p.run.declare(c, cs)
			}
		}
		return
	}

	m := p.run.msg
	m.Attachments = append(m.Attachments, Attachment{
		Part:        id,
		Filename:    strings.TrimSpace(name),
		ContentType: typ,
		Disposition: disp,
		ContentID:   cleanID(e.cid),
	})
	p.leaf = leaf{att: len(m.Attachments) - 1, path: path, enc: enc, hash: sha256.New(), tnef: isTNEF}
	l := &p.leaf
	switch enc {
	case encBase64:
		if p.b64 == nil {
			p.b64 = b64Pool.Get().(*b64Decoder)
		}
		p.b64.reset(l)
		l.b64 = p.b64
	case encQP:
		if p.qp == nil {
			p.qp = &qpDecoder{}
		}
		p.qp.reset(l)
		l.qp = p.qp
	}
	if rfc822 {
		if e.depth+1 >= maxDepth || strings.Count(id, "/") >= maxMessageDepth {
			p.run.problem("too-deep", id, "attached messages nested too deep; this one is kept whole, not read")
		} else {
			buf := childBufs.Get().(*[]byte)
			l.child = newParser(p.run, id+"/", e.depth+1, false, *buf)
			l.child.pooled = buf
		}
	}
}

func cleanID(v string) string {
	v, _ = decodeText(strings.Trim(strings.TrimSpace(v), "<>"), nil)
	return v
}

// leaf is the body of a part that is not multipart.
type leaf struct {
	discard bool // a body part, or one past the limits: nothing to compute
	att     int  // index in Message.Attachments
	path    string
	enc     transferEncoding
	b64     *b64Decoder
	qp      *qpDecoder
	hash    hash.Hash
	size    int64
	pending termKind // identity encoding: the last line's terminator, which belongs to a following boundary
	child   *parser  // message/rfc822: the attached message is parsed as it streams by
	tnef    bool
	tnefBuf []byte
	tooBig  bool
}

// Write receives decoded bytes.
func (l *leaf) Write(b []byte) (int, error) {
	l.hash.Write(b)
	l.size += int64(len(b))
	if l.child != nil {
		l.child.write(b)
	}
	if l.tnef && !l.tooBig {
		if len(l.tnefBuf)+len(b) > maxTNEF {
			l.tooBig, l.tnefBuf = true, nil
		} else {
			l.tnefBuf = append(l.tnefBuf, b...)
		}
	}
	return len(b), nil
}

func (l *leaf) content(b []byte) {
	if l.discard {
		return
	}
	switch l.enc {
	case encIdentity:
		if l.pending != termNone {
			l.Write(termBytes[l.pending])
			l.pending = termNone
		}
		if len(b) > 0 {
			l.Write(b)
		}
	case encBase64:
		l.b64.write(b)
	case encQP:
		l.qp.content(b)
	}
}

func (l *leaf) eol(t termKind) {
	if l.discard {
		return
	}
	switch l.enc {
	case encIdentity:
		l.pending = t
	case encQP:
		l.qp.eol(t)
	}
}

// endLeaf finishes a leaf. The line end before a boundary belongs to the boundary (RFC 2046
// section 5.1.1); at the end of the input it belongs to the body.
func (p *parser) endLeaf(byBoundary bool) {
	l := &p.leaf
	if l.discard {
		return
	}
	id := p.partID(l.path)
	switch l.enc {
	case encIdentity:
		if !byBoundary && l.pending != termNone {
			l.Write(termBytes[l.pending])
		}
	case encBase64:
		if l.b64.close() {
			p.run.problem("bad-base64", id, "characters outside the base64 alphabet or a cut-off final group; they were skipped")
		}
	case encQP:
		if l.qp.close(!byBoundary) {
			p.run.problem("bad-quoted-printable", id, `"=" not followed by two hex digits; kept as it is`)
		}
	}
	a := &p.run.msg.Attachments[l.att]
	a.Size, a.SHA256 = l.size, hex.EncodeToString(l.hash.Sum(nil))
	if l.child != nil {
		l.child.close()
		l.child.release()
	}
	if l.tnef {
		p.tnef(id, l.tnefBuf, l.tooBig)
	}
	p.leaf = leaf{discard: true}
}

// b64Decoder decodes base64 in large blocks. Lines arrive without their terminators; characters
// outside the alphabet and padding in the middle (several base64 runs glued together) drop to a
// slower path that skips them.
type b64Decoder struct {
	stage []byte
	out   []byte
	bad   bool
	w     io.Writer
}

const b64Block = 16 << 10

// Buffers are reused across messages: a Lambda parses one message after another.
var (
	b64Pool   = sync.Pool{New: func() any { return newB64Decoder() }}
	childBufs = sync.Pool{New: func() any { b := make([]byte, childBufSize); return &b }}
)

func newB64Decoder() *b64Decoder {
	return &b64Decoder{stage: make([]byte, 0, b64Block), out: make([]byte, b64Block/4*3)}
}

func (d *b64Decoder) reset(w io.Writer) {
	d.stage, d.bad, d.w = d.stage[:0], false, w
}

func (d *b64Decoder) write(b []byte) {
	for len(b) > 0 {
		n := copy(d.stage[len(d.stage):cap(d.stage)], b)
		d.stage = d.stage[:len(d.stage)+n]
		b = b[n:]
		if len(d.stage) == cap(d.stage) {
			d.drain(false)
		}
	}
}

func (d *b64Decoder) drain(final bool) {
	n := len(d.stage) &^ 3
	if final {
		n = len(d.stage)
	}
	if n == 0 {
		return
	}
	if m, err := base64.StdEncoding.Decode(d.out, d.stage[:n]); err == nil {
		d.w.Write(d.out[:m])
		d.stage = d.stage[:copy(d.stage, d.stage[n:])]
		return
	}
	d.slow(final)
}

// slow decodes the whole stage character by character, keeping an incomplete final group for
// the next block unless this is the end of the part.
func (d *b64Decoder) slow(final bool) {
	var q [4]byte
	nq, m := 0, 0
	emit := func(k int) { // write the first k bytes of the group in q
		v := uint32(q[0])<<18 | uint32(q[1])<<12 | uint32(q[2])<<6 | uint32(q[3])
		for i := 0; i < k; i++ {
			d.out[m] = byte(v >> (16 - 8*i))
			m++
		}
		q = [4]byte{}
		if m > len(d.out)-3 {
			d.w.Write(d.out[:m])
			m = 0
		}
	}
	for _, c := range d.stage {
		switch v := b64value(c); {
		case v >= 0:
			q[nq] = byte(v)
			if nq++; nq == 4 {
				emit(3)
				nq = 0
			}
		case c == '=':
			// Padding ends a group; a new base64 run may follow.
			if nq == 1 {
				d.bad = true
			} else if nq > 1 {
				emit(nq - 1)
			}
			nq = 0
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		default:
			d.bad = true
		}
	}
	if m > 0 {
		d.w.Write(d.out[:m])
	}
	d.stage = d.stage[:0]
	if nq == 0 {
		return
	}
	if !final {
		for i := 0; i < nq; i++ {
			d.stage = append(d.stage, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[q[i]])
		}
		return
	}
	if nq == 1 {
		d.bad = true // six bits make no byte
		return
	}
	m = 0
	emit(nq - 1) // a final group without its padding
	d.w.Write(d.out[:m])
}

// close decodes what is left and reports whether anything had to be skipped.
func (d *b64Decoder) close() bool {
	d.drain(true)
	return d.bad
}

// qpDecoder decodes quoted-printable line by line. The end of a line decides what its last bytes
// mean (a soft line break, transport padding), so they are held until the line ends.
type qpDecoder struct {
	out     []byte
	hold    []byte // end of the current line: trailing whitespace, "=" or "=X"
	scratch []byte
	pending termKind // a hard line break not yet written: it belongs to a following boundary
	bad     bool
	w       io.Writer
}

func (d *qpDecoder) reset(w io.Writer) {
	if d.out == nil {
		d.out = make([]byte, 0, 8<<10)
	}
	d.out, d.hold, d.pending, d.bad, d.w = d.out[:0], d.hold[:0], termNone, false, w
}

func (d *qpDecoder) content(b []byte) {
	if d.pending != termNone {
		d.out = append(d.out, termBytes[d.pending]...)
		d.pending = termNone
	}
	if len(d.hold) > 0 {
		d.scratch = append(append(d.scratch[:0], d.hold...), b...)
		b = d.scratch
		d.hold = d.hold[:0]
	}
	k := len(b)
	for k > 0 && (b[k-1] == ' ' || b[k-1] == '\t') {
		k--
	}
	switch {
	case k > 0 && b[k-1] == '=':
		k--
	case k == len(b) && k > 1 && b[k-2] == '=' && unhex(b[k-1]) >= 0:
		k -= 2 // "=X": the second digit may be in the next piece
	}
	d.decode(b[:k])
	d.hold = append(d.hold, b[k:]...)
	if n := len(d.hold); n > 4<<10 {
		// Kilobytes of whitespace in one line are not transport padding; keep the memory bounded.
		d.decode(d.hold[:n-64])
		d.hold = append(d.hold[:0], d.hold[n-64:]...)
	}
}

func (d *qpDecoder) eol(t termKind) {
	h := d.hold
	for len(h) > 0 && (h[len(h)-1] == ' ' || h[len(h)-1] == '\t') {
		h = h[:len(h)-1] // transport padding
	}
	if len(h) > 0 && h[len(h)-1] == '=' {
		d.decode(h[:len(h)-1]) // soft line break
	} else {
		d.decode(h)
		d.pending = t
	}
	d.hold = d.hold[:0]
	if len(d.out) > cap(d.out)-256 {
		d.flush()
	}
}

func (d *qpDecoder) decode(s []byte) {
	for len(s) > 0 {
		i := bytes.IndexByte(s, '=')
		if i < 0 {
			d.literal(s)
			break
		}
		d.literal(s[:i])
		if i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
			d.out = append(d.out, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			s = s[i+3:]
		} else {
			d.bad = true
			d.out = append(d.out, '=')
			s = s[i+1:]
		}
		if len(d.out) > cap(d.out)-256 {
			d.flush()
		}
	}
}

// literal appends bytes that need no decoding, keeping out within its capacity.
func (d *qpDecoder) literal(s []byte) {
	if len(d.out)+len(s) > cap(d.out) {
		d.flush()
		if len(s) > cap(d.out) {
			d.w.Write(s)
			return
		}
	}
	d.out = append(d.out, s...)
}

func (d *qpDecoder) flush() {
	if len(d.out) > 0 {
		d.w.Write(d.out)
		d.out = d.out[:0]
	}
}

// close finishes the part; atEOF says the last line end belongs to the body.
func (d *qpDecoder) close(atEOF bool) bool {
	h := d.hold
	for len(h) > 0 && (h[len(h)-1] == ' ' || h[len(h)-1] == '\t') {
		h = h[:len(h)-1]
	}
	if len(h) > 0 && h[len(h)-1] == '=' {
		h = h[:len(h)-1]
	}
	d.decode(h)
	if atEOF && d.pending != termNone {
		d.out = append(d.out, termBytes[d.pending]...)
	}
	d.flush()
	return d.bad
}

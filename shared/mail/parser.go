package mail

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The parser is pushed raw bytes and walks the MIME structure one line at a time, so nothing but
// fixed buffers is held whatever the message size. Instead of one reader per multipart level it
// keeps a stack of open boundaries and checks each line against all of them: a part whose own
// multipart never ends is still closed by its parent's boundary, and nothing after it is lost.
//
// It is written here rather than taken from github.com/emersion/go-message because that package's
// readers stop at what real mail is full of: its header reader returns an error at the first line
// without a colon, its multipart reader nests one reader per level (so a missing inner boundary
// swallows the rest of the message) and neither reads CR-only line ends.

type termKind uint8

// Line terminators as received. Identity-encoded parts are hashed with their terminators as they
// were, so a part's hash does not depend on how this parser reads line ends.
const (
	termNone termKind = iota // last line of the input, or a piece of a line longer than the buffer
	termLF
	termCRLF
	termCR
)

var termBytes = [...][]byte{termNone: nil, termLF: []byte("\n"), termCRLF: []byte("\r\n"), termCR: []byte("\r")}

type state uint8

const (
	stHeader   state = iota // reading an entity's header
	stBody                  // reading a leaf entity's body
	stPreamble              // in a multipart, before its first boundary
	stEpilogue              // in a multipart, after its close delimiter
	stSniff                 // in a multipart that declared no boundary, looking for one
)

// sink says where the rest of a line goes when it arrives in pieces.
type sink uint8

const (
	sinkDiscard sink = iota
	sinkField
	sinkLeaf
)

// frame is an open multipart.
type frame struct {
	boundary []byte
	path     string // part path of the multipart itself, "" for a message's root
	depth    int
	parts    int
	closed   bool
	digest   bool // multipart/digest: parts default to message/rfc822
	content  bool // a non-blank line came before the first boundary
}

// entity is the MIME entity whose header or body is being read.
type entity struct {
	path        string // "" for the root of a message
	depth       int
	defaultType string

	field     []byte // the header field being unfolded
	inField   bool
	truncated bool
	fields    int

	garbage, garbageLines int // skipped before the first field of a message
	firstGarbage          string
	malformed             int // lines without a colon inside the header
	firstMalformed        string

	ctype, cdisp, cte, cid string
	hasCType               bool
	boundary               []byte // of a multipart ctype, read once it is needed
	boundaryRead           bool
}

type parser struct {
	run    *run
	prefix string // "" for the message itself, "3/" inside the message attached as part 3
	top    bool

	buf    []byte // raw input not yet split into lines: buf[r:w]
	r, w   int
	seenLF bool // the input uses LF or CRLF, so a lone CR is text, not a line end
	counts [4]int64
	mid    bool // the last piece handed on did not end its line

	state  state
	sink   sink
	ent    entity
	frames []frame
	leaf   leaf
	b64    *b64Decoder
	qp     *qpDecoder
	pooled *[]byte // buf, when it came from childBufs
}

// release returns the parser's buffers for reuse; the parser is not used after it.
func (p *parser) release() {
	if p.b64 != nil {
		p.b64.w = nil
		b64Pool.Put(p.b64)
		p.b64 = nil
	}
	if p.pooled != nil {
		childBufs.Put(p.pooled)
		p.pooled, p.buf = nil, nil
	}
}

func newParser(run *run, prefix string, depth int, top bool, buf []byte) *parser {
	p := &parser{run: run, prefix: prefix, top: top, buf: buf}
	p.startEntity("", depth, "text/plain")
	return p
}

// partID is the path reported for an entity: a message's own header is "" (or the attached
// message's part), its single body is "1".
func (p *parser) partID(path string) string {
	if path == "" {
		return strings.TrimSuffix(p.prefix, "/")
	}
	return p.prefix + path
}

func (p *parser) problem(code, path, detail string) {
	p.run.problem(code, p.partID(path), detail)
}

// write feeds an attached message's bytes to its parser.
func (p *parser) write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		c := copy(p.buf[p.w:], b)
		p.w += c
		b = b[c:]
		p.scan(false)
	}
	return n, nil
}

// scan splits buf[r:w] into lines. A CR at the end of the buffer waits for the next byte, which
// decides whether it is half of a CRLF.
func (p *parser) scan(final bool) {
	for p.r < p.w {
		data := p.buf[p.r:p.w]
		if p.seenLF {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			line, term := data[:i], termLF
			if i > 0 && line[i-1] == '\r' {
				term = termCRLF
				for len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
			}
			p.r += i + 1
			p.counts[term]++
			p.line(line, term)
			continue
		}
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		if data[i] == '\n' {
			p.seenLF = true
			p.r += i + 1
			p.counts[termLF]++
			p.line(data[:i], termLF)
			continue
		}
		j := i + 1
		for j < len(data) && data[j] == '\r' {
			j++
		}
		if j == len(data) && !final {
			break
		}
		if j < len(data) && data[j] == '\n' {
			p.seenLF = true
			p.r += j + 1
			p.counts[termCRLF]++
			p.line(data[:i], termCRLF)
			continue
		}
		p.r += i + 1
		p.counts[termCR]++
		p.line(data[:i], termCR)
	}
	switch {
	case final:
		if p.r < p.w {
			line := p.buf[p.r:p.w]
			p.r = p.w
			p.line(line, termNone)
		}
		p.r, p.w = 0, 0
	case p.r == p.w:
		p.r, p.w = 0, 0
	default:
		if p.r > 0 {
			p.w = copy(p.buf, p.buf[p.r:p.w])
			p.r = 0
		}
		if p.w == len(p.buf) {
			// One line fills the buffer: hand it on in pieces. Trailing CRs stay behind, they may
			// be the start of the line's CRLF.
			k := p.w
			for k > 0 && p.buf[k-1] == '\r' {
				k--
			}
			if k == 0 {
				k = p.w
			}
			p.piece(p.buf[:k])
			p.w = copy(p.buf, p.buf[k:p.w])
		}
	}
}

// line handles one line without its terminator.
func (p *parser) line(b []byte, term termKind) {
	if p.mid {
		p.mid = false
		p.more(b)
	} else {
		p.begin(b, true)
	}
	if p.sink == sinkLeaf {
		p.leaf.eol(term)
	}
}

// piece handles part of a line longer than the buffer; the rest follows.
func (p *parser) piece(b []byte) {
	if p.mid {
		p.more(b)
		return
	}
	p.mid = true
	p.begin(b, false)
}

func (p *parser) more(b []byte) {
	switch p.sink {
	case sinkField:
		p.appendField(b)
	case sinkLeaf:
		p.leaf.content(b)
	}
}

// begin handles the start of a line. whole is false when only the first piece of a long line is
// known; such a line cannot be a boundary.
func (p *parser) begin(b []byte, whole bool) {
	if whole && len(b) > 2 && b[0] == '-' && b[1] == '-' {
		if i, closing := p.matchBoundary(b); i >= 0 {
			p.boundary(i, closing)
			return
		}
		if p.state == stSniff && p.sniff(b) {
			return
		}
	}
	switch p.state {
	case stHeader:
		p.headerLine(b, whole)
	case stBody:
		p.sink = sinkLeaf
		p.leaf.content(b)
	default:
		p.sink = sinkDiscard
		if len(b) > 0 && p.state != stEpilogue {
			p.frames[len(p.frames)-1].content = true
		}
	}
}

// matchBoundary finds the innermost open multipart whose delimiter b is. Only whitespace may
// follow the boundary, so a boundary that is a prefix of another does not match it.
func (p *parser) matchBoundary(b []byte) (int, bool) {
	for i := len(p.frames) - 1; i >= 0; i-- {
		f := &p.frames[i]
		if f.closed || len(f.boundary) == 0 || !bytes.HasPrefix(b[2:], f.boundary) {
			continue
		}
		rest := bytes.TrimRight(b[2+len(f.boundary):], " \t\r")
		if len(rest) == 0 {
			return i, false
		}
		// "--" closes; a close delimiter with one dash too few or too many is still one.
		if len(bytes.Trim(rest, "-")) == 0 && len(rest) <= 3 {
			return i, true
		}
	}
	return -1, false
}

// sniff adopts the first delimiter-looking line as the boundary of a multipart that declared none.
func (p *parser) sniff(b []byte) bool {
	cand := bytes.TrimRight(b[2:], " \t\r")
	if len(cand) < 4 || len(cand) > 200 || bytes.ContainsAny(cand, " \t") {
		return false
	}
	f := &p.frames[len(p.frames)-1]
	f.boundary = append([]byte(nil), cand...)
	p.problem("missing-boundary", f.path, "multipart without a boundary parameter; boundary taken from the body")
	p.boundary(len(p.frames)-1, false)
	return true
}

// boundary ends whatever was being read and moves to the next part of frame i, or to its epilogue.
func (p *parser) boundary(i int, closing bool) {
	p.endEntity(true)
	for len(p.frames)-1 > i {
		p.popFrame()
	}
	f := &p.frames[i]
	if closing {
		f.closed = true
		p.state, p.sink = stEpilogue, sinkDiscard
		return
	}
	f.parts++
	def := "text/plain"
	if f.digest {
		def = "message/rfc822"
	}
	path := strconv.Itoa(f.parts)
	if f.path != "" {
		path = f.path + "." + path
	}
	p.startEntity(path, f.depth+1, def)
}

func (p *parser) popFrame() {
	f := p.frames[len(p.frames)-1]
	p.frames = p.frames[:len(p.frames)-1]
	switch {
	case f.closed:
	case len(f.boundary) == 0:
		p.problem("missing-boundary", f.path, "multipart without a boundary parameter, and no boundary line in its body; its parts are not read")
	case f.parts == 0 && !p.top && !f.content:
		// An attached message cut down to its header, as bounces carry them: nothing is lost.
	case f.parts == 0:
		p.problem("boundary-not-found", f.path, "no part starts with boundary "+quote(string(f.boundary)))
	default:
		p.problem("unterminated-multipart", f.path, "no close delimiter for boundary "+quote(string(f.boundary)))
	}
}

// close ends the input: whatever is open was cut short.
func (p *parser) close() {
	p.scan(true)
	p.endEntity(false)
	for len(p.frames) > 0 {
		p.popFrame()
	}
}

func (p *parser) startEntity(path string, depth int, defaultType string) {
	p.run.parts++
	field := p.ent.field[:0]
	p.ent = entity{path: path, depth: depth, defaultType: defaultType, field: field}
	p.state, p.sink = stHeader, sinkDiscard
	if p.run.parts > maxParts {
		if p.run.parts == maxParts+1 {
			p.problem("too-many-parts", path, fmt.Sprintf("more than %d MIME parts; the rest are not read", maxParts))
		}
		p.leaf = leaf{discard: true}
		p.state = stBody
	}
}

// endEntity finishes the current entity when a boundary (or the end of input) arrives.
func (p *parser) endEntity(byBoundary bool) {
	switch p.state {
	case stHeader:
		p.endHeader()
		if p.state == stBody {
			p.endLeaf(byBoundary)
		}
	case stBody:
		p.endLeaf(byBoundary)
	}
	p.mid = false
}

// headerLine handles the start of a line in a header.
func (p *parser) headerLine(b []byte, whole bool) {
	e := &p.ent
	if e.fields == 0 && e.path == "" {
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a byte order mark from a Windows export
	}
	if len(b) == 0 && whole {
		if e.fields == 0 && e.path == "" {
			e.garbage++ // blank lines before a message's header
			return
		}
		p.endHeader()
		return
	}
	if b[0] == ' ' || b[0] == '\t' {
		if e.inField {
			p.sink = sinkField
			p.appendField(b)
			return
		}
	} else if fieldNameLen(b) > 0 {
		p.finishField()
		e.inField, e.truncated = true, false
		e.field = e.field[:0]
		e.fields++
		p.sink = sinkField
		p.appendField(b)
		return
	}
	if e.fields > 0 && bytes.HasPrefix(b, []byte("--")) && len(p.boundaryOf(e)) > 0 &&
		bytes.HasPrefix(b[2:], p.boundaryOf(e)) {
		// The blank line before the first boundary is missing: the header ends here.
		p.endHeader()
		p.begin(b, whole)
		return
	}
	if e.inField && endsWithSemicolon(e.field) && looksLikeParam(b) {
		// A parameter list folded without indentation, as some Exchange servers send it.
		if e.malformed++; e.malformed == 1 {
			e.firstMalformed = quote(string(b))
		}
		p.sink = sinkField
		p.appendField([]byte(" "))
		p.appendField(b)
		return
	}
	p.finishField()
	p.sink = sinkDiscard
	switch {
	case e.fields > 0:
		// A line without a colon, often a long value wrapped without indentation. Skipping it
		// keeps the fields after it.
		if e.malformed++; e.malformed == 1 {
			e.firstMalformed = quote(string(b))
		}
	case e.path == "":
		// Before a message's first field: an mbox "From " line, or junk a mail system put there.
		e.garbage += len(b)
		if !(e.garbageLines == 0 && bytes.HasPrefix(b, []byte("From "))) && len(bytes.TrimSpace(b)) > 0 {
			if e.garbageLines++; e.garbageLines == 1 {
				e.firstGarbage = quote(string(b))
			}
		}
		if e.garbage > maxGarbage {
			p.endHeader()
			p.begin(b, whole)
		}
	default:
		// A part that starts with its body: it has no header.
		p.endHeader()
		p.begin(b, whole)
	}
}

// boundaryOf returns the boundary of the multipart Content-Type read so far in e's header.
func (p *parser) boundaryOf(e *entity) []byte {
	if !e.hasCType || e.boundaryRead {
		return e.boundary
	}
	e.boundaryRead = true
	t, rest := mediaType(e.ctype)
	if !strings.HasPrefix(t, "multipart/") {
		return nil
	}
	var d wordDecoder
	if b := strings.TrimRight(parseParams(rest, &d)["boundary"], " \t"); b != "" {
		e.boundary = []byte(b)
	}
	return e.boundary
}

func endsWithSemicolon(b []byte) bool {
	b = bytes.TrimRight(b, " \t")
	return len(b) > 0 && b[len(b)-1] == ';'
}

// looksLikeParam reports whether a line starts with "name=".
func looksLikeParam(b []byte) bool {
	eq := bytes.IndexByte(b, '=')
	return eq > 0 && bytes.IndexAny(b[:eq], " \t:;\"") < 0
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fieldNameLen returns the length of the "Name:" a header line starts with, or 0 if it does not.
func fieldNameLen(b []byte) int {
	for i, c := range b {
		switch {
		case c == ':':
			return i
		case c == ' ' || c == '\t':
			// Obsolete syntax allows space before the colon.
			rest := bytes.TrimLeft(b[i:], " \t")
			if len(rest) > 0 && rest[0] == ':' && i > 0 {
				return i
			}
			return 0
		case c < '!' || c > '~':
			return 0
		}
	}
	return 0
}

func (p *parser) appendField(b []byte) {
	e := &p.ent
	if room := maxFieldLen - len(e.field); len(b) > room {
		b = b[:max(room, 0)]
		e.truncated = true
	}
	e.field = append(e.field, b...)
}

// finishField hands on the field being unfolded.
func (p *parser) finishField() {
	e := &p.ent
	if !e.inField {
		return
	}
	e.inField = false
	colon := bytes.IndexByte(e.field, ':')
	name := bytes.TrimRight(e.field[:colon], " \t")
	value := bytes.Trim(e.field[colon+1:], " \t\r\n")
	if e.truncated {
		p.problem("header-too-long", e.path, fmt.Sprintf("%s longer than %d KiB, cut short", name, maxFieldLen>>10))
	}
	switch {
	case bytes.EqualFold(name, []byte("Content-Type")):
		if !e.hasCType {
			e.ctype, e.hasCType = string(value), true
		}
	case bytes.EqualFold(name, []byte("Content-Disposition")):
		if e.cdisp == "" {
			e.cdisp = string(value)
		}
	case bytes.EqualFold(name, []byte("Content-Transfer-Encoding")):
		if e.cte == "" {
			e.cte = string(value)
		}
	case bytes.EqualFold(name, []byte("Content-ID")):
		if e.cid == "" {
			e.cid = string(value)
		}
	}
	if p.top && e.path == "" {
		p.run.addHeader(name, value)
	}
}

// endHeader ends a header and starts reading the body its fields describe.
func (p *parser) endHeader() {
	p.finishField()
	e := &p.ent
	if e.path == "" && p.top {
		switch {
		case e.fields == 0:
			p.run.noHeader = true
			p.problem("missing-header", "", "the message has no header fields")
		case e.garbageLines > 0:
			p.problem("garbage-before-header", "", fmt.Sprintf("%s before the first header field, the first %s", plural(e.garbageLines, "line"), e.firstGarbage))
		}
	}
	if e.malformed > 0 {
		p.problem("malformed-header-line", e.path, fmt.Sprintf("%s without a colon, the first %s", plural(e.malformed, "header line"), e.firstMalformed))
	}
	p.startBody()
}

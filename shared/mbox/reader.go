package mbox

import (
	"bufio"
	"bytes"
	"io"
)

// Reader reads the messages of an mbox stream one after another, like archive/tar: Next moves to
// the next message and returns its envelope, and Read reads that message's bytes, unquoted. The
// reader holds at most its 64 KiB buffer, whatever the size of a message or of a line.
//
// A "From " line separates messages when it follows a blank line (or starts the input), or, for
// files whose writer left the blank line out, when its date can be read; any other "From " line
// is message text. The blank line before a separator, and one at the very end, belong to the
// file, not to the message.
type Reader struct {
	br  *bufio.Reader
	pos int64 // bytes consumed from br

	state   state
	held    [2]byte // a blank line not yet known to be message text
	heldLen int
	heldOut int // bytes of held already given to Read

	started bool
	inMsg   bool
	next    *Envelope // the separator that ended the current message
	nextAt  int64
	msgAt   int64
	err     error
}

type state int

const (
	atLineStart state = iota // deciding whether the line is a separator
	emitHeld                 // the held blank line is message text: give it out
	atLineBody               // the line is message text: blank, quoted or plain?
	inRun                    // inside a run of ">" at a line's start, one ">" held back
	inLine                   // copying the rest of a line
	atEnd                    // the message ended
)

// NewReader returns a Reader of the mbox stream r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Offset is the position in the input of the current message's separator line, so that reading
// can resume there (an import that continues in another invocation).
func (r *Reader) Offset() int64 { return r.msgAt }

// Next moves to the next message, skipping what is unread of the current one, and returns its
// envelope. It returns io.EOF after the last message, and ErrNotMbox when the input has text
// before its first separator.
func (r *Reader) Next() (Envelope, error) {
	if r.inMsg {
		if _, err := io.Copy(io.Discard, onlyReader{r}); err != nil {
			return Envelope{}, err
		}
	}
	if r.err != nil {
		return Envelope{}, r.err
	}
	if !r.started {
		r.started = true
		return r.first()
	}
	if r.next == nil {
		return Envelope{}, io.EOF
	}
	env := *r.next
	r.next, r.msgAt = nil, r.nextAt
	r.begin()
	return env, nil
}

func (r *Reader) first() (Envelope, error) {
	for { // blank lines before the first separator are tolerated
		b, _ := r.br.Peek(2)
		switch {
		case len(b) >= 1 && b[0] == '\n':
			r.discard(1)
			continue
		case len(b) == 2 && b[0] == '\r' && b[1] == '\n':
			r.discard(2)
			continue
		}
		break
	}
	line, err := r.peekLine()
	if len(line) == 0 && err == io.EOF {
		return Envelope{}, io.EOF // an empty mbox holds no message
	}
	if err != nil && err != io.EOF {
		r.err = err
		return Envelope{}, err
	}
	env, _, ok := parseSeparator(line)
	if !ok {
		r.err = ErrNotMbox
		return Envelope{}, ErrNotMbox
	}
	r.msgAt = r.pos
	r.discard(len(line))
	r.begin()
	return env, nil
}

func (r *Reader) begin() {
	r.inMsg, r.state, r.heldLen, r.heldOut = true, atLineStart, 0, 0
}

// peekLine returns the next line if it fits in MaxSeparator bytes, else what is there.
func (r *Reader) peekLine() ([]byte, error) {
	b, err := r.br.Peek(MaxSeparator)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], nil
	}
	if err == bufio.ErrBufferFull {
		err = nil
	}
	if err == nil {
		return nil, nil // too long to be a separator
	}
	return b, err
}

func (r *Reader) discard(n int) {
	d, _ := r.br.Discard(n)
	r.pos += int64(d)
}

// Read reads the current message's bytes. It returns io.EOF at the message's end.
func (r *Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch r.state {
		case atLineStart:
			if done, err := r.lineStart(); err != nil {
				return n, err
			} else if done {
				r.state = atEnd
			}
		case emitHeld:
			c := copy(p[n:], r.held[r.heldOut:r.heldLen])
			n += c
			if r.heldOut += c; r.heldOut == r.heldLen {
				r.heldLen, r.heldOut, r.state = 0, 0, atLineBody
			}
		case atLineBody:
			b, err := r.br.Peek(2)
			switch {
			case len(b) == 0:
				if err != io.EOF {
					r.err = err
					return n, err
				}
				r.state = atLineStart // the end of the input: atLineStart ends the message
			case b[0] == '\n':
				r.hold(b[:1])
			case len(b) == 2 && b[0] == '\r' && b[1] == '\n':
				r.hold(b)
			case b[0] == '>':
				r.discard(1)
				r.state = inRun
			default:
				r.state = inLine
			}
		case inRun:
			b, _ := r.br.Peek(1)
			if len(b) == 1 && b[0] == '>' {
				p[n] = '>'
				n++
				r.discard(1)
				continue
			}
			// The run is over: the held ">" is the quoting mboxrd added when "From " follows.
			// Given out now rather than first, it makes the same bytes: the run is all ">".
			if next, _ := r.br.Peek(5); string(next) != "From " {
				p[n] = '>'
				n++
			}
			r.state = inLine
		case inLine:
			if r.br.Buffered() == 0 {
				if _, err := r.br.Peek(1); err != nil {
					if err != io.EOF {
						r.err = err
						return n, err
					}
					r.state = atLineStart
					continue
				}
			}
			b, _ := r.br.Peek(r.br.Buffered())
			if len(b) > len(p)-n {
				b = b[:len(p)-n]
			}
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[:i+1]
				r.state = atLineStart
			}
			n += copy(p[n:], b)
			r.discard(len(b))
		case atEnd:
			r.inMsg = false
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
	}
	return n, nil
}

// hold keeps a blank line back: before a separator, or at the end, it is not the message's.
func (r *Reader) hold(b []byte) {
	r.heldLen = copy(r.held[:], b)
	r.discard(len(b))
	r.state = atLineStart
}

// lineStart decides whether the line ahead ends the message: a separator, or the end of the
// input. done is false when the line is message text; the state then says how to read it.
func (r *Reader) lineStart() (done bool, err error) {
	b, perr := r.br.Peek(5)
	if len(b) == 0 {
		if perr != io.EOF {
			r.err = perr
			return false, perr
		}
		r.heldLen = 0 // the blank line that ends the file
		r.next = nil
		return true, nil
	}
	if string(b) == "From " {
		line, err := r.peekLine()
		if err != nil && err != io.EOF {
			r.err = err
			return false, err
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if env, strict, ok := parseSeparator(line); ok && (r.heldLen > 0 || strict) {
				r.heldLen = 0
				r.next, r.nextAt = &env, r.pos
				r.discard(len(line))
				return true, nil
			}
		}
	}
	if r.heldLen > 0 {
		r.state = emitHeld
	} else {
		r.state = atLineBody
	}
	return false, nil
}

// onlyReader hides Reader's other methods from io.Copy.
type onlyReader struct{ r *Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

package mbox

import (
	"bufio"
	"errors"
	"io"
)

// Writer writes messages to an mbox stream. It keeps no message: each is copied through a 32 KiB
// buffer as it is read.
type Writer struct {
	w  io.Writer
	br *bufio.Reader
	// out batches small writes (a quoting ">" and the line after it) into whole chunks.
	out []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, br: bufio.NewReaderSize(nil, 32<<10), out: make([]byte, 0, 32<<10)}
}

// WriteMessage writes one message read from msg, after a separator line for env, and returns the
// bytes written to the stream. On a read error the stream holds part of the message; callers that
// retry roll their destination back to where the message began.
func (w *Writer) WriteMessage(env Envelope, msg io.Reader) (int64, error) {
	w.br.Reset(msg)
	defer w.br.Reset(nil)
	w.out = append(w.out[:0], separator(env)...)
	var (
		n      int64
		empty  = true
		last   byte
		lineAt = true // at the start of a line
	)
	flush := func() error {
		if len(w.out) == 0 {
			return nil
		}
		m, err := w.w.Write(w.out)
		n += int64(m)
		w.out = w.out[:0]
		return err
	}
	for {
		if lineAt {
			// A line of ">"s then "From " gets one more ">". The run of ">"s may be longer
			// than any buffer; the added one is written at its end, which gives the same bytes.
			for {
				b, err := w.br.ReadByte()
				if err != nil {
					break
				}
				if b != '>' {
					w.br.UnreadByte()
					break
				}
				w.out = append(w.out, '>')
				empty, last = false, '>'
				if len(w.out) == cap(w.out) {
					if err := flush(); err != nil {
						return n, err
					}
				}
			}
			if next, _ := w.br.Peek(5); string(next) == "From " {
				w.out = append(w.out, '>')
			}
			lineAt = false
		}
		chunk, err := w.br.ReadSlice('\n')
		if len(chunk) > 0 {
			empty, last = false, chunk[len(chunk)-1]
			if len(w.out)+len(chunk) > cap(w.out) {
				if ferr := flush(); ferr != nil {
					return n, ferr
				}
			}
			if len(chunk) > cap(w.out) {
				m, werr := w.w.Write(chunk)
				n += int64(m)
				if werr != nil {
					return n, werr
				}
			} else {
				w.out = append(w.out, chunk...)
			}
			lineAt = last == '\n'
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
		default:
			flush()
			return n, err
		}
		break
	}
	if !empty && last != '\n' {
		w.out = append(w.out, '\n')
	}
	w.out = append(w.out, '\n')
	return n, flush()
}

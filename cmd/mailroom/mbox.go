package main

import (
	"bufio"
	"bytes"
	"io"
)

// withoutMboxSeparator returns r without a leading mbox "From " separator line. Messages saved
// from a mailbox often start with one; it is the mailbox's envelope line, not part of the message,
// and no SMTP client sends it, so injecting it would archive something SES never receives.
func withoutMboxSeparator(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	head, _ := br.Peek(5)
	if !bytes.Equal(head, []byte("From ")) {
		return br
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return br
		}
		switch b {
		case '\n':
			return br
		case '\r':
			if next, err := br.Peek(1); err == nil && next[0] == '\n' {
				br.ReadByte()
			}
			return br
		}
	}
}

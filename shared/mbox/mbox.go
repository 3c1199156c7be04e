// Package mbox reads and writes mailbox files in the mboxrd variant (RFC 4155 with reversible
// quoting), streaming: a message is never held whole, and a line of any length passes through
// bounded buffers. Exports write it; imports from other mail systems read it, tolerating mboxo.
//
// The variant, exactly:
//   - Each message starts with a separator line "From <envelope sender> <asctime date>\n" (RFC
//     4155); the sender is MAILER-DAEMON when the envelope had none, the date is UTC.
//   - A message line that starts with zero or more ">" followed by "From " gets one more ">"
//     (mboxrd), so that reading removes exactly one and gives back the original bytes. mboxo
//     quoted only "From " lines; reading an mboxo file therefore also unquotes lines that were
//     ">From " in the original, the one loss mboxo itself makes unavoidable.
//   - The message's bytes are written as they are, CRLF or LF line ends alike; one that does not
//     end with a line end gets "\n" (mbox cannot say where such a message ends). A blank line
//     ("\n") follows every message, the last too, and a reader drops that one blank line again.
package mbox

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/mail"
)

// Envelope is what a separator line says about the message after it.
type Envelope struct {
	// Sender is the envelope sender (MAIL FROM), "" for a bounce (written MAILER-DAEMON).
	Sender string
	// Date is when the message was received; zero when the line's date could not be read.
	Date time.Time
}

// nullSender stands for the empty envelope sender, as in every mbox writer since sendmail.
const nullSender = "MAILER-DAEMON"

// asctime is the date layout of separator lines (RFC 4155: the output of ctime(3), in UTC).
const asctime = "Mon Jan _2 15:04:05 2006"

// MaxSeparator is the longest separator line read as one; a longer "From " line is message text.
const MaxSeparator = 4096

// ErrNotMbox is returned by Reader.Next when the input does not start with a separator line.
var ErrNotMbox = errors.New("mbox: the input does not start with a \"From \" separator line")

// separator returns the separator line for env.
func separator(env Envelope) []byte {
	sender := env.Sender
	if sender == "" {
		sender = nullSender
	}
	// A sender with white space or a line end would break the line; the envelope of SMTP mail
	// has none, so such a value is not an address and is not worth keeping.
	if strings.ContainsAny(sender, " \t\r\n") || len(sender) > MaxSeparator/2 {
		sender = nullSender
	}
	date := env.Date
	if date.IsZero() {
		date = time.Unix(0, 0)
	}
	b := make([]byte, 0, 5+len(sender)+1+len(asctime)+1)
	b = append(b, "From "...)
	b = append(b, sender...)
	b = append(b, ' ')
	b = date.UTC().AppendFormat(b, asctime)
	return append(b, '\n')
}

// parseSeparator reads a separator line (with its line end). ok is false when the line has no
// sender; strict also requires a readable date, which is how a separator is told from message
// text that was not quoted (mboxo writers that did not quote, or files joined by hand).
func parseSeparator(line []byte) (env Envelope, strict, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte("From "))
	if !found {
		return Envelope{}, false, false
	}
	rest = bytes.TrimRight(rest, "\r\n")
	rest = bytes.TrimLeft(rest, " \t")
	i := bytes.IndexAny(rest, " \t")
	if i < 0 {
		if len(rest) == 0 {
			return Envelope{}, false, false
		}
		i = len(rest)
	}
	sender := string(rest[:i])
	if sender == nullSender {
		sender = ""
	}
	env.Sender = sender
	date := strings.TrimSpace(string(rest[i:]))
	if date == "" {
		return env, false, true
	}
	t, err := mail.ParseDate(date)
	if err != nil {
		return env, false, true
	}
	env.Date = t
	return env, true, true
}

package mbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var day = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func write(t testing.TB, msgs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i, m := range msgs {
		n, err := w.WriteMessage(Envelope{Sender: fmt.Sprintf("s%d@example.org", i), Date: day}, strings.NewReader(m))
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(buf.Len()) && i == 0 {
			t.Fatalf("WriteMessage returned %d, wrote %d", n, buf.Len())
		}
	}
	return buf.Bytes()
}

type read struct {
	env Envelope
	raw string
	at  int64
}

func readAll(t testing.TB, r io.Reader) ([]read, error) {
	t.Helper()
	mr := NewReader(r)
	var out []read
	for {
		env, err := mr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		raw, err := io.ReadAll(mr)
		if err != nil {
			return out, err
		}
		out = append(out, read{env, string(raw), mr.Offset()})
	}
}

// expected is what reading gives back for a written message: the bytes, with a line end added
// when there was none.
func expected(m string) string {
	if m != "" && !strings.HasSuffix(m, "\n") {
		return m + "\n"
	}
	return m
}

func TestWriterOutput(t *testing.T) {
	tests := []struct {
		name string
		env  Envelope
		msg  string
		want string
	}{
		{"plain", Envelope{Sender: "ana@example.org", Date: day}, "Subject: x\n\nhi\n",
			"From ana@example.org Wed Mar  4 05:06:07 2026\nSubject: x\n\nhi\n\n"},
		{"null sender, zone converted to UTC", Envelope{Date: day.In(time.FixedZone("", 8*3600))}, "a\n",
			"From MAILER-DAEMON Wed Mar  4 05:06:07 2026\na\n\n"},
		{"quoting every >*From line, only at line starts", Envelope{Sender: "a@b", Date: day},
			"From x\nFrom: y\n>From z\n>>From w\n> From v\n From u\nx From t\n",
			"From a@b Wed Mar  4 05:06:07 2026\n>From x\nFrom: y\n>>From z\n>>>From w\n> From v\n From u\nx From t\n\n"},
		{"CRLF kept", Envelope{Sender: "a@b", Date: day}, "A: b\r\n\r\nFrom c\r\n",
			"From a@b Wed Mar  4 05:06:07 2026\nA: b\r\n\r\n>From c\r\n\n"},
		{"no final line end", Envelope{Sender: "a@b", Date: day}, "A: b\n\nbody",
			"From a@b Wed Mar  4 05:06:07 2026\nA: b\n\nbody\n\n"},
		{"empty", Envelope{Sender: "a@b", Date: day}, "", "From a@b Wed Mar  4 05:06:07 2026\n\n"},
		{"sender that is no address", Envelope{Sender: "a b@c", Date: day}, "x\n", "From MAILER-DAEMON Wed Mar  4 05:06:07 2026\nx\n\n"},
		{"no date", Envelope{Sender: "a@b"}, "x\n", "From a@b Thu Jan  1 00:00:00 1970\nx\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := NewWriter(&buf).WriteMessage(tt.env, iotest.OneByteReader(strings.NewReader(tt.msg)))
			if err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("wrote\n%q\nwant\n%q", got, tt.want)
			}
			if n != int64(buf.Len()) {
				t.Errorf("n = %d, wrote %d", n, buf.Len())
			}
		})
	}
}

func TestReadForeignFiles(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []read
		err  error
	}{
		{"mboxo: only From quoted; >From read as From too",
			"From a@b Mon Jan  1 00:00:00 2024\nA: 1\n\n>From x\n>>From y\n\nFrom c@d Tue Jan  2 00:00:00 2024\nB: 2\n\n",
			[]read{{Envelope{"a@b", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "A: 1\n\nFrom x\n>From y\n", 0},
				{Envelope{"c@d", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}, "B: 2\n", 58}}, nil},
		{"CRLF throughout, CRLF blank line before the separator",
			"From a@b Mon Jan  1 00:00:00 2024\r\nA: 1\r\n\r\nbody\r\n\r\nFrom c@d Tue Jan  2 00:00:00 2024\r\nB: 2\r\n",
			[]read{{Envelope{"a@b", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "A: 1\r\n\r\nbody\r\n", 0},
				{Envelope{"c@d", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}, "B: 2\r\n", 51}}, nil},
		{"no blank line before a separator with a date; no blank line at the end",
			"From a@b Mon Jan  1 00:00:00 2024\nA: 1\nFrom c@d Tue Jan  2 00:00:00 2024\nB: 2",
			[]read{{Envelope{"a@b", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "A: 1\n", 0},
				{Envelope{"c@d", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}, "B: 2", 39}}, nil},
		{"unquoted From in a body without a blank line before it is text",
			"From a@b Mon Jan  1 00:00:00 2024\nA: 1\n\nI wrote\nFrom here on, it is text\n\n",
			[]read{{Envelope{"a@b", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "A: 1\n\nI wrote\nFrom here on, it is text\n", 0}}, nil},
		{"Gmail Takeout separator; zone and unusual date forms",
			"From 1789012345678901234@xxx Mon Jan 01 10:00:00 +0800 2024\nA: 1\n\n",
			[]read{{Envelope{"1789012345678901234@xxx", time.Date(2024, 1, 1, 2, 0, 0, 0, time.UTC)}, "A: 1\n", 0}}, nil},
		{"separator without a date", "From MAILER-DAEMON\nA: 1\n",
			[]read{{Envelope{}, "A: 1\n", 0}}, nil},
		{"blank lines before the first separator", "\n\r\nFrom a@b Mon Jan  1 00:00:00 2024\nA\n",
			[]read{{Envelope{"a@b", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "A\n", 3}}, nil},
		{"empty input", "", nil, nil},
		{"a message, not an mbox", "Subject: hi\n\nbody\n", nil, ErrNotMbox},
		{"a From: header is not a separator", "From: ana@example.org\n\nbody\n", nil, ErrNotMbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.HalfReader} {
				got, err := readAll(t, wrap(strings.NewReader(tt.in)))
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
					t.Errorf("read\n%+v\nwant\n%+v", got, tt.want)
				}
			}
		})
	}
}

// TestRoundTrip writes random messages made of the lines that matter to mbox (separators,
// quoted and unquoted "From " lines, blank lines, CRLF, bare CR, long lines, no final line end)
// and reads them back: every message comes back byte for byte.
func TestRoundTrip(t *testing.T) {
	pieces := []string{"From ", ">From ", ">>>From x", "From: a@b", "\n", "\r\n", "\r", "", ">", " From ",
		"From a@b Mon Jan  1 00:00:00 2024", "text", "\n\n", "\r\n\r\n", ">>>>", "Fro", "m "}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		msgs := make([]string, 1+rng.IntN(4))
		for j := range msgs {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			msgs[j] = b.String()
		}
		checkRoundTrip(t, fmt.Sprint("case ", i), msgs, true)
	}
	// Lines and runs of ">" longer than any buffer.
	long := strings.Repeat("x", 200<<10)
	gts := strings.Repeat(">", 100<<10)
	checkRoundTrip(t, "long lines", []string{long, long + "\n", gts + "From x\n" + long, gts + "\n" + gts, "From " + long + "\n"}, true)
}

// checkRoundTrip writes msgs and reads them back; thorough also reads one byte at a time and
// resumes at every message's offset.
func checkRoundTrip(t *testing.T, name string, msgs []string, thorough bool) {
	t.Helper()
	out := write(t, msgs...)
	wraps := []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }}
	if thorough {
		wraps = append(wraps, iotest.OneByteReader)
	}
	for _, wrap := range wraps {
		got, err := readAll(t, wrap(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(msgs) {
			t.Fatalf("%s: wrote %d messages %q, read %d: %+v\nfile %q", name, len(msgs), msgs, len(got), got, out)
		}
		for i, m := range msgs {
			if got[i].raw != expected(m) {
				t.Fatalf("%s: message %d read back\n%q\nwant\n%q\nfile %q", name, i, got[i].raw, expected(m), out)
			}
			if got[i].env.Sender != fmt.Sprintf("s%d@example.org", i) || !got[i].env.Date.Equal(day) {
				t.Fatalf("%s: message %d envelope %+v", name, i, got[i].env)
			}
			if !thorough && i > 0 {
				continue
			}
			// The offset is where reading can resume.
			rest, err := readAll(t, bytes.NewReader(out[got[i].at:]))
			if err != nil || len(rest) != len(msgs)-i || rest[0].raw != expected(m) {
				t.Fatalf("%s: resuming at message %d (offset %d): %v, %d messages", name, i, got[i].at, err, len(rest))
			}
		}
	}
}

// TestNextSkipsUnread checks that Next skips what was not read of a message.
func TestNextSkipsUnread(t *testing.T) {
	r := NewReader(bytes.NewReader(write(t, "A: 1\n\nlong body\n", "B: 2\n")))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "B: 2\n" {
		t.Errorf("second message = %q", got)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after the last = %v, want io.EOF", err)
	}
}

// FuzzRoundTrip: any bytes, split into messages at NUL, are written and read back unchanged
// (with a line end added where a message had none).
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("From a\n>From b\x00\r\n\r\nFrom c"))
	f.Add([]byte(">>>>\x00\x00From \n\n"))
	f.Add([]byte("\n\nFrom a@b Mon Jan  1 00:00:00 2024\n\x00x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := strings.Split(string(data), "\x00")
		checkRoundTrip(t, "fuzz", msgs, false)
	})
}

// FuzzReader: the reader never fails or loops on any input, and reads every byte at most once.
func FuzzReader(f *testing.F) {
	f.Add([]byte("From a@b Mon Jan  1 00:00:00 2024\nA\n\n>From x\nFrom c\n"))
	f.Add([]byte("From \nFrom x y\r\n\r\nFrom"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readAll(t, bytes.NewReader(data))
		if err != nil && err != ErrNotMbox {
			t.Fatal(err)
		}
		total := 0
		for _, m := range got {
			total += len(m.raw)
		}
		if total > len(data) {
			t.Fatalf("read %d message bytes from %d input bytes", total, len(data))
		}
	})
}

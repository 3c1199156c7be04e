package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"

	"github.com/mailroom/mailroom/shared/mail/mailtest"
)

// seeds are the fixtures plus small generated messages.
func seeds(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, name := range fixtures(t) {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	for _, kind := range mailtest.Kinds {
		out = append(out, mailtest.Generate(kind, 2000))
	}
	return append(out, tnefMessage(tnefBlob(tnefFile{name: "a.txt", data: []byte("hello"), longName: "a long name.txt", mimeType: "text/plain"})))
}

// TestTruncatedAndGarbled cuts every seed at many offsets and damages it in ways real transfers
// do; parsing must never fail or panic and must still account for every byte.
func TestTruncatedAndGarbled(t *testing.T) {
	damage := []func([]byte, int) []byte{
		func(b []byte, i int) []byte { return b[:i] },
		func(b []byte, i int) []byte { return append(b[:i:i], b[min(i+7, len(b)):]...) },
		func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] = '\r'; return c },
		func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] = 0x80; return c },
		func(b []byte, i int) []byte { return append(append(b[:i:i], "\n--"...), b[i:]...) },
		func(b []byte, i int) []byte { return append(append(b[:i:i], "=?utf-8?B?"...), b[i:]...) },
	}
	for si, seed := range seeds(t) {
		step := max(1, len(seed)/200)
		for i := 0; i < len(seed); i += step {
			for di, d := range damage {
				in := d(seed, i)
				m, err := Parse(bytes.NewReader(in))
				if err != nil {
					t.Fatalf("seed %d damage %d at %d: %v", si, di, i, err)
				}
				checkInvariants(t, in, m)
			}
		}
	}
}

// FuzzParse checks that no input makes Parse fail, panic, lose bytes or produce invalid UTF-8,
// and that the result does not depend on how the input is split into reads.
func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Parse(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, in, m)
		m2, err := Parse(iotest.OneByteReader(bytes.NewReader(in)))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := toJSON(t, m), toJSON(t, m2); !bytes.Equal(a, b) {
			t.Fatalf("one-byte reads give a different result:\n%s\nwant:\n%s", b, a)
		}
	})
}

func codes(m *Message) []string {
	var c []string
	for _, p := range m.Problems {
		c = append(c, p.Code)
	}
	return c
}

func hasCode(m *Message, code string) bool {
	for _, p := range m.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

const bombHeader = "From: a@x.example\r\nTo: b@x.example\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\nMessage-ID: <bomb@x.example>\r\n"

func TestBombs(t *testing.T) {
	deep := func(levels int) string {
		var b strings.Builder
		b.WriteString(bombHeader)
		for i := 0; i < levels; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: application/pdf\r\n\r\nx\r\n")
		for i := levels - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.String()
	}
	deepMessages := func(levels int) string {
		var b strings.Builder
		b.WriteString(bombHeader)
		for i := 0; i < levels; i++ {
			b.WriteString("Content-Type: message/rfc822\r\n\r\n")
		}
		b.WriteString("Subject: innermost\r\n\r\nbody\r\n")
		return b.String()
	}
	manyParts := func(n int) string {
		var b strings.Builder
		b.WriteString(bombHeader + "Content-Type: multipart/mixed; boundary=p\r\n\r\n")
		for i := 0; i < n; i++ {
			b.WriteString("--p\r\nContent-Type: image/gif\r\n\r\nGIF\r\n")
		}
		b.WriteString("--p--\r\n")
		return b.String()
	}
	manyFields := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("x", 200))
		}
		return b.String() + bombHeader + "Subject: still found\r\n\r\nbody\r\n"
	}
	tests := []struct {
		name   string
		raw    string
		code   string
		verify func(t *testing.T, m *Message)
	}{
		{"deep multipart", deep(200), "too-deep", nil},
		{"deep attached messages", deepMessages(200), "too-deep", nil},
		{"many parts", manyParts(5000), "too-many-parts", func(t *testing.T, m *Message) {
			if len(m.Attachments) >= maxParts {
				t.Errorf("%d attachments kept, want fewer than %d", len(m.Attachments), maxParts)
			}
		}},
		{"huge field", bombHeader + "Subject: " + strings.Repeat("s", 1<<20) + "\r\n\r\nbody\r\n", "header-too-long", func(t *testing.T, m *Message) {
			if len(m.Subject) != maxFieldLen-len("Subject: ") {
				t.Errorf("subject of %d bytes kept, want %d", len(m.Subject), maxFieldLen-len("Subject: "))
			}
		}},
		{"huge folded field", bombHeader + "References: <a@b>" + strings.Repeat("\r\n <x@y.example>", 100_000) + "\r\n\r\nbody\r\n", "header-too-long", func(t *testing.T, m *Message) {
			if len(m.References) == 0 || len(m.References) > maxIDs {
				t.Errorf("%d references kept", len(m.References))
			}
		}},
		{"many fields", manyFields(5000), "too-many-header-fields", func(t *testing.T, m *Message) {
			if m.Subject != "still found" || len(m.From) != 1 {
				t.Errorf("fields after the bound were lost: subject %q, from %v", m.Subject, m.From)
			}
			if len(m.Header) > maxHeaderFields+len(interpreted)*3 {
				t.Errorf("%d header fields kept", len(m.Header))
			}
		}},
		{"garbage instead of a header", strings.Repeat("garbage line\r\n", 10_000), "missing-header", nil},
		{"many problems", bombHeader + "Content-Type: multipart/mixed; boundary=p\r\n\r\n" +
			strings.Repeat("--p\r\nContent-Type: text/plain; charset=bogus\r\n\r\nx\r\n", 500), "too-many-problems", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, []byte(tt.raw), m)
			if !hasCode(m, tt.code) {
				t.Errorf("problems %v, want %s", codes(m), tt.code)
			}
			if tt.verify != nil {
				tt.verify(t, m)
			}
		})
	}
}

// TestLongLines checks lines far longer than the read buffer, in a part and in a header.
func TestLongLines(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100_000)
	sum := sha256.Sum256(data)
	for _, eol := range []string{"\r\n", "\n", "\r"} {
		raw := strings.ReplaceAll(bombHeader, "\r\n", eol) +
			"Content-Type: multipart/mixed; boundary=z" + eol + eol + "--z" + eol +
			"Content-Type: application/octet-stream" + eol + "Content-Transfer-Encoding: base64" + eol + eol +
			base64Std(data) + eol + "--z" + eol + "Content-Type: text/plain" + eol + eol +
			strings.Repeat("y", 300_000) + eol + "--z--" + eol
		m, err := Parse(iotest.HalfReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Attachments) != 1 || m.Attachments[0].SHA256 != hex.EncodeToString(sum[:]) || len(m.Problems) > 0 {
			t.Errorf("%q line ends: attachments %+v problems %+v", eol, m.Attachments, m.Problems)
		}
	}
}

// TestMemoryFlat parses a 30 MB message and checks that the parser allocated a small, fixed amount.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 30 MB")
	}
	raw := mailtest.Generate("multi-attachment", 30<<20)
	small := mailtest.Generate("multi-attachment", 300<<10)
	alloc := func(b []byte) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := Parse(bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	a1, a2 := alloc(small), alloc(raw)
	if a2 > 1<<20 || a2 > 2*a1+256<<10 {
		t.Errorf("parsing 300 KB allocated %d bytes, 30 MB %d bytes: memory grows with the message", a1, a2)
	}
}

type tnefFile struct {
	name string
	data []byte
	// Outlook's MAPI properties, written when set: the long name (as UTF-16) and the MIME type.
	longName, mimeType string
}

// tnefBlob writes a minimal TNEF stream (MS-OXTNEF): version, code page, then per file its
// rendering data, title and data attributes.
func tnefBlob(files ...tnefFile) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint32(nil, 0x223e9f78))
	b.Write(le.AppendUint16(nil, 0x0001))
	attr := func(level byte, id uint32, data []byte) {
		b.WriteByte(level)
		b.Write(le.AppendUint32(nil, id))
		b.Write(le.AppendUint32(nil, uint32(len(data))))
		b.Write(data)
		var sum uint16
		for _, c := range data {
			sum += uint16(c)
		}
		b.Write(le.AppendUint16(nil, sum))
	}
	attr(1, 0x00089006, le.AppendUint32(nil, 0x00010000))
	attr(1, 0x00069007, []byte{0xe4, 0x04, 0, 0, 0, 0, 0, 0})
	for _, f := range files {
		attr(2, 0x00069002, make([]byte, 14))
		attr(2, 0x00018010, append([]byte(f.name), 0))
		attr(2, 0x0006800f, f.data)
		if f.longName != "" {
			var props []byte
			prop := func(tag uint32, v []byte) {
				props = le.AppendUint32(props, tag)
				props = le.AppendUint32(props, 1)
				props = le.AppendUint32(props, uint32(len(v)))
				props = append(props, v...)
				props = append(props, make([]byte, -len(v)&3)...)
			}
			var name []byte
			for _, u := range utf16.Encode([]rune(f.longName + "\x00")) {
				name = le.AppendUint16(name, u)
			}
			count := le.AppendUint32(nil, 3)
			props = le.AppendUint32(props, 0x0e200003) // PR_ATTACH_SIZE, a fixed-size one to skip
			props = le.AppendUint32(props, 1234)
			prop(0x3707001f, name)
			prop(0x370e001e, []byte(f.mimeType+"\x00"))
			attr(2, 0x00069005, append(count, props...))
		}
	}
	return b.Bytes()
}

func tnefMessage(blob []byte) []byte {
	var b bytes.Buffer
	b.WriteString(bombHeader + "Subject: winmail\r\nContent-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\n")
	b.WriteString("Content-Type: text/plain\r\n\r\nSee attached.\r\n--t\r\n")
	b.WriteString("Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"winmail.dat\"\r\n\r\n")
	enc := base64Std(blob)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--t--\r\n")
	return b.Bytes()
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestTNEF(t *testing.T) {
	pdf := []byte("%PDF-1.4 not really")
	sheet := bytes.Repeat([]byte("cell,"), 1000)
	blob := tnefBlob(tnefFile{name: "Quarterly report.pdf", data: pdf}, tnefFile{name: "Caf\xe9 budget.xlsx", data: sheet})

	forged := bytes.Clone(blob)
	// A message-level MAPI property list claiming four billion properties.
	forged = append(forged, 1)
	forged = binary.LittleEndian.AppendUint32(forged, 0x00069003)
	forged = binary.LittleEndian.AppendUint32(forged, 8)
	forged = append(forged, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0)

	orphan := tnefBlob()
	orphan = append(orphan, 2, 0x10, 0x80, 0x01, 0x00, 2, 0, 0, 0, 'x', 0, 0, 0)

	tests := []struct {
		name    string
		blob    []byte
		want    []Attachment // inside the TNEF part
		problem string
	}{
		{"two files", blob, []Attachment{
			{Part: "2/tnef:1", Filename: "Quarterly report.pdf", ContentType: "application/octet-stream", Size: int64(len(pdf)), SHA256: hexSum(pdf)},
			{Part: "2/tnef:2", Filename: "Café budget.xlsx", ContentType: "application/octet-stream", Size: int64(len(sheet)), SHA256: hexSum(sheet)},
		}, ""},
		{"long names", tnefBlob(tnefFile{"REPORT~1.PDF", pdf, "Rapport trimestriel – été.pdf", "application/pdf"}), []Attachment{
			{Part: "2/tnef:1", Filename: "Rapport trimestriel – été.pdf", ContentType: "application/pdf", Size: int64(len(pdf)), SHA256: hexSum(pdf)},
		}, ""},
		{"cut short", blob[:len(blob)-100], []Attachment{
			{Part: "2/tnef:1", Filename: "Quarterly report.pdf", ContentType: "application/octet-stream", Size: int64(len(pdf)), SHA256: hexSum(pdf)},
			{Part: "2/tnef:2", Filename: "Café budget.xlsx", ContentType: "application/octet-stream", Size: 0, SHA256: hexSum(nil)},
		}, "tnef-undecodable"},
		{"forged property count", forged, nil, "tnef-undecodable"},
		{"attribute outside an attachment", orphan, nil, "tnef-undecodable"},
		{"not tnef", []byte("PK\x03\x04 a zip file"), nil, "tnef-undecodable"},
		{"empty", nil, nil, "tnef-undecodable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tnefMessage(tt.blob)
			m, err := Parse(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, raw, m)
			if len(m.Attachments) == 0 || m.Attachments[0].Part != "2" || m.Attachments[0].Filename != "winmail.dat" ||
				m.Attachments[0].SHA256 != hexSum(tt.blob) {
				t.Fatalf("winmail.dat itself not recorded: %+v", m.Attachments)
			}
			got := m.Attachments[1:]
			if tt.name == "forged property count" {
				got = nil // the files before the forged list are listed too; only the problem matters here
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("files = %+v\nwant %+v", got, tt.want)
			}
			if tt.problem == "" && len(m.Problems) > 0 || tt.problem != "" && !hasCode(m, tt.problem) {
				t.Errorf("problems %+v, want %q", m.Problems, tt.problem)
			}
		})
	}
}

func TestTNEFTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 35 MB")
	}
	raw := tnefMessage(tnefBlob(tnefFile{name: "big.bin", data: make([]byte, maxTNEF)}))
	m, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !hasCode(m, "tnef-too-large") || len(m.Attachments) != 1 || m.Attachments[0].Size <= maxTNEF {
		t.Errorf("attachments %+v problems %+v, want winmail.dat alone and tnef-too-large", m.Attachments, m.Problems)
	}
}

// TestGuard checks that a bug in a parse step turns into a problem instead of a lost message.
func TestGuard(t *testing.T) {
	r := &run{msg: &Message{}}
	r.guard(func() { panic("index out of range") })
	r.guard(func() { t.Error("a step ran after the parse failed") })
	if len(r.msg.Problems) != 1 || r.msg.Problems[0].Code != "parse-failed" {
		t.Errorf("problems %+v, want one parse-failed", r.msg.Problems)
	}
}

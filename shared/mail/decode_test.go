package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestDecodeHeader(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"plain", "Hello world", "Hello world"},
		{"gb2312", "=?gb2312?B?1tDOxA==?=", "中文"},
		{"gbk under a gb2312 label", "=?GB2312?B?6UY=?=", "镕"},
		{"gb18030 four-byte under a gb2312 label", "=?gb2312?B?lTKCNg==?=", "𠀀"},
		{"gbk", "=?gbk?B?1tDOxA==?=", "中文"},
		{"big5", "=?big5?B?pKSk5Q==?=", "中文"},
		{"iso-2022-jp", "=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"},
		{"shift_jis", "=?shift_jis?B?k/qWe4zq?=", "日本語"},
		{"euc-jp", "=?euc-jp?B?xvzL3Ljs?=", "日本語"},
		{"euc-kr", "=?euc-kr?B?x9Gxub7u?=", "한국어"},
		{"ks_c_5601-1987", "=?ks_c_5601-1987?B?x9Gxub7u?=", "한국어"},
		{"koi8-r", "=?koi8-r?B?8NLJ18XU?=", "Привет"},
		{"windows-1251", "=?windows-1251?B?z/Do4uXy?=", "Привет"},
		{"windows-1252", "=?windows-1252?Q?=80uro?=", "€uro"},
		{"windows-1258 combining marks", "=?windows-1258?Q?Vi=EA=F2t?=", "Việt"},
		{"iso-8859-2", "=?iso-8859-2?B?o/NkvA==?=", "Łódź"},
		{"iso-8859-7", "=?iso-8859-7?B?xevr5+3p6tw=?=", "Ελληνικά"},
		{"iso-8859-8", "=?iso-8859-8?B?+ezl7Q==?=", "שלום"},
		{"tis-620", "=?tis-620?B?5LfC?=", "ไทย"},
		{"q with underscores, lower case", "=?iso-8859-1?q?caf=e9_cr=E8me?=", "café crème"},
		{"upper-case charset and encoding", "=?UTF-8?Q?na=C3=AFve?=", "naïve"},
		{"rfc 2231 language", "=?us-ascii*en?Q?Hello?=", "Hello"},
		{"adjacent words lose the space", "=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"},
		{"folded adjacent words", "=?utf-8?Q?a?=\r\n =?utf-8?Q?b?=", "ab"},
		{"text between words stays", "=?utf-8?Q?a?= and =?utf-8?Q?b?=", "a and b"},
		{"word glued to text", "Re:=?utf-8?Q?caf=C3=A9?=!", "Re:café!"},
		{"words glued together", "=?utf-8?B?5L2g?==?utf-8?B?5aW9?=", "你好"},
		{"split inside a character", "=?utf-8?B?5L2g5Q==?= =?utf-8?B?pb0=?=", "你好"},
		{"split inside a base64 group", "=?utf-8?B?5L2g5a?= =?utf-8?B?W9?=", "你好"},
		{"split inside a q character", "=?utf-8?Q?caf=C3?= =?utf-8?Q?=A9?=", "café"},
		{"split iso-2022-jp", "=?iso-2022-jp?B?GyRCRnxLXA==?= =?iso-2022-jp?B?OGwbKEI=?=", "日本語"},
		{"different charsets", "=?iso-8859-1?Q?=E9?= =?koi8-r?B?8NLJ18XU?=", "éПривет"},
		{"unknown charset keeps the text", "=?x-klingon?Q?Qapla'?=", "Qapla'"},
		{"utf-7", "=?utf-7?Q?Hi_+AOk-?=", "Hi é"},
		{"unpadded base64", "=?utf-8?B?w6k?=", "é"},
		{"invalid base64 keeps what decodes", "=?utf-8?B?w6k*?=", "é"},
		{"not a word", "=?utf-8?X?abc?= and =? no", "=?utf-8?X?abc?= and =? no"},
		{"unterminated word", "=?utf-8?Q?abc", "=?utf-8?Q?abc"},
		{"raw latin-1 bytes", "caf\xe9", "café"},
		{"raw utf-8", "café", "café"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecodeHeader(tt.raw); got != tt.want {
				t.Errorf("DecodeHeader(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestDecodeHeaderProblems(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{"=?utf-8?Q?fine?=", nil},
		{"=?x-klingon?Q?Qapla'?=", []string{`unknown-charset: charset "x-klingon" in Subject`}},
		{"=?utf-8?B?w6k*?=", []string{"bad-encoded-word: invalid base64 in Subject"}},
	}
	for _, tt := range tests {
		var got []string
		d := wordDecoder{field: "Subject", problem: func(code, detail string) { got = append(got, code+": "+detail) }}
		d.decode(tt.raw)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("decode(%q) problems = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		raw     string
		want    []Address
		wantErr bool
	}{
		{"alice@example.com", []Address{{"", "alice@example.com"}}, false},
		{"Alice <Alice@Example.COM>", []Address{{"Alice", "Alice@example.com"}}, false},
		{`"Doe, Jane" <jane@x.example>, bob@y.example`, []Address{{"Doe, Jane", "jane@x.example"}, {"", "bob@y.example"}}, false},
		{"jane@x.example (Jane Doe)", []Address{{"Jane Doe", "jane@x.example"}}, false},
		{"John Q. Public <jqp@x.example>", []Address{{"John Q. Public", "jqp@x.example"}}, false},
		{"=?utf-8?B?5L2g5aW9?= <n@x.example>", []Address{{"你好", "n@x.example"}}, false},
		{`"=?iso-8859-1?Q?Fran=E7ois?=" <f@x.example>`, []Address{{"François", "f@x.example"}}, false},
		{"=?utf-8?Q?a?= =?utf-8?Q?b?= <ab@x.example>", []Address{{"ab", "ab@x.example"}}, false},
		{"undisclosed-recipients:;", nil, false},
		{"Team: a@x.example, b@x.example;, c@x.example", []Address{{"", "a@x.example"}, {"", "b@x.example"}, {"", "c@x.example"}}, false},
		{"<@relay.example:user@x.example>", []Address{{"", "user@x.example"}}, false},
		{"<mailto:user@x.example>", []Address{{"", "user@x.example"}}, false},
		{"Jane Doe jane@x.example", []Address{{"Jane Doe", "jane@x.example"}}, false},
		{"postmaster", []Address{{"", "postmaster"}}, false},
		{"MAILER-DAEMON <>", []Address{{"MAILER-DAEMON", ""}}, false},
		{"a@x.example, , b@x.example,", []Address{{"", "a@x.example"}, {"", "b@x.example"}}, false},
		{`"quoted \"name\"" <q@x.example>`, []Address{{`quoted "name"`, "q@x.example"}}, false},
		{"Jürgen <j@x.example>", []Address{{"Jürgen", "j@x.example"}}, false},
		{"not an address, ok@x.example", []Address{{"", "ok@x.example"}}, true},
		{"", nil, false},
	}
	for _, tt := range tests {
		got, err := ParseAddressList(tt.raw)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseAddressList(%q) error = %v, want error %v", tt.raw, err, tt.wantErr)
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseAddressList(%q) = %+v, want %+v", tt.raw, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseAddressList(%q)[%d] = %+v, want %+v", tt.raw, i, got[i], tt.want[i])
			}
		}
	}
}

func TestParseDate(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		raw  string
		want time.Time // zero: unreadable
	}{
		{"Tue, 04 Mar 2025 10:15:00 +0100", utc("2025-03-04T09:15:00Z")},
		{"4 Mar 2025 10:15:00 -0000", utc("2025-03-04T10:15:00Z")},
		{"Tue, 4 Mar 2025 10:15:00 +0100 (CET)", utc("2025-03-04T09:15:00Z")},
		{"Tue, 4 Mar 2025 10:15 +0100", utc("2025-03-04T09:15:00Z")},
		{"Tue, 4 Mar 25 10:15:00 +0100", utc("2025-03-04T09:15:00Z")},
		{"Mon, 2 Jan 2006 15:04:05 EST", utc("2006-01-02T20:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 PDT", utc("2006-01-02T22:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 GMT", utc("2006-01-02T15:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 UT", utc("2006-01-02T15:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 JST", utc("2006-01-02T06:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 +0000 GMT", utc("2006-01-02T15:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 GMT+0100", utc("2006-01-02T14:04:05Z")},
		{"Monday, 2 January 2006 15:04:05 +0100", utc("2006-01-02T14:04:05Z")},
		{"Mon, 2 Jan 2006 15:04:05 0100", utc("2006-01-02T14:04:05Z")},
		{"Mon Jan  2 15:04:05 2006", utc("2006-01-02T15:04:05Z")},
		{"Mon Jan  2 15:04:05 EST 2006", utc("2006-01-02T20:04:05Z")},
		{"2006-01-02T15:04:05+01:00", utc("2006-01-02T14:04:05Z")},
		{"2006-01-02 15:04:05", utc("2006-01-02T15:04:05Z")},
		{"Thursday, April 09, 2003 9:00 AM", utc("2003-04-09T09:00:00Z")},
		{"Mon,  2 Apr 101 04:20:10 CST", utc("2001-04-02T10:20:10Z")},
		{"Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", utc("1997-11-21T15:55:06Z")},
		{"Mon, 2 Jan 2006 15:04:05.123 +0000", utc("2006-01-02T15:04:05.123Z")},
		{"sometime last week", time.Time{}},
		{"Wed, 15 Dec 2010    59:10 -0500", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.raw)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("ParseDate(%q) = %v, want an error", tt.raw, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.raw, got, err, tt.want)
		}
	}
}

func TestParams(t *testing.T) {
	tests := []struct {
		raw  string
		want map[string]string
	}{
		{`; charset=utf-8; format=flowed`, map[string]string{"charset": "utf-8", "format": "flowed"}},
		{`; name="a b.pdf"; NAME=second`, map[string]string{"name": "a b.pdf"}},
		{`; filename="C:\\dir\\x.txt"`, map[string]string{"filename": `C:\dir\x.txt`}},
		{`; filename=unquoted name.pdf`, map[string]string{"filename": "unquoted name.pdf"}},
		{`; filename="unterminated.pdf`, map[string]string{"filename": "unterminated.pdf"}},
		{`; filename*=utf-8''%E2%82%AC%20rates.pdf`, map[string]string{"filename": "€ rates.pdf"}},
		{`; filename*=iso-8859-1'fr'caf%E9.txt`, map[string]string{"filename": "café.txt"}},
		{`; filename*0*=utf-8''%E6%97%A5; filename*1*=%E6%9C%AC; filename*2=".txt"`, map[string]string{"filename": "日本.txt"}},
		{`; filename*1="b.txt"; filename*0="a"`, map[string]string{"filename": "ab.txt"}},
		{`; filename*0*=utf-8''%E2; filename*1*=%82%AC`, map[string]string{"filename": "€"}},
		{`; filename="old.txt"; filename*=utf-8''new.txt`, map[string]string{"filename": "new.txt"}},
		{`; name="=?utf-8?B?5L2g5aW9?=.doc"`, map[string]string{"name": "你好.doc"}},
		{`; filename*=gb2312''%D6%D0%CE%C4.txt`, map[string]string{"filename": "中文.txt"}},
		{`;;; novalue; x=1`, map[string]string{"x": "1"}},
		{``, nil},
	}
	for _, tt := range tests {
		var d wordDecoder
		got := parseParams(tt.raw, &d)
		if len(got) != len(tt.want) {
			t.Errorf("parseParams(%q) = %q, want %q", tt.raw, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("parseParams(%q)[%s] = %q, want %q", tt.raw, k, got[k], v)
			}
		}
	}
}

func TestMediaType(t *testing.T) {
	tests := []struct{ raw, typ, rest string }{
		{"text/plain; charset=utf-8", "text/plain", " charset=utf-8"},
		{"TEXT/HTML", "text/html", ""},
		{`"text/plain"`, "text/plain", ""},
		{"text/plain charset=utf-8", "text/plain", " charset=utf-8;"},
	}
	for _, tt := range tests {
		if typ, rest := mediaType(tt.raw); typ != tt.typ || rest != tt.rest {
			t.Errorf("mediaType(%q) = %q, %q; want %q, %q", tt.raw, typ, rest, tt.typ, tt.rest)
		}
	}
}

// collect is an io.Writer that keeps what it is given.
type collect struct{ bytes.Buffer }

func TestBase64Decoder(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		want   string
		bad    bool
		pieces int // feed each line in this many pieces
	}{
		{"lines", []string{"SGVsbG8g", "d29ybGQ="}, "Hello world", false, 1},
		{"groups across lines", []string{"SGVsb", "G8gd29", "ybGQ="}, "Hello world", false, 1},
		{"no padding", []string{"SGVsbG8gd29ybGQ"}, "Hello world", false, 1},
		{"padding in the middle", []string{"SGk=", "SGk="}, "HiHi", false, 1},
		{"spaces and tabs", []string{" SGVs bG8g\t", "d29y bGQ="}, "Hello world", false, 1},
		{"invalid characters", []string{"SGVs*bG8g", "d29ybGQ="}, "Hello world", true, 1},
		{"one character left over", []string{"SGVsbG8gd29ybGQ=", "Q"}, "Hello world", true, 1},
		{"pieces", []string{"SGVsbG8gd29ybGQ="}, "Hello world", false, 5},
		{"empty", nil, "", false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out collect
			d := newB64Decoder()
			d.reset(&out)
			for _, l := range tt.lines {
				for _, p := range split(l, tt.pieces) {
					d.write([]byte(p))
				}
			}
			bad := d.close()
			if out.String() != tt.want || bad != tt.bad {
				t.Errorf("decoded %q, bad %v; want %q, %v", out.String(), bad, tt.want, tt.bad)
			}
		})
	}
}

// TestBase64Large checks the block path against the standard library on data larger than a block.
func TestBase64Large(t *testing.T) {
	raw := make([]byte, 100_000)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	var lines bytes.Buffer
	enc := base64Std(raw)
	for len(enc) > 76 {
		lines.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	lines.WriteString(enc + "\n")
	var out collect
	d := newB64Decoder()
	d.reset(&out)
	for _, l := range strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n") {
		d.write([]byte(l))
	}
	if d.close() || !bytes.Equal(out.Bytes(), raw) {
		t.Fatalf("decoded %d bytes, want the %d bytes encoded", out.Len(), len(raw))
	}
}

func TestQPDecoder(t *testing.T) {
	tests := []struct {
		name     string
		lines    []string
		want     string
		bad      bool
		boundary bool // the part ends at a boundary: the last line end is not part of it
	}{
		{"hex", []string{"caf=C3=A9 cr=e8me"}, "café cr\xe8me\r\n", false, false},
		{"soft break", []string{"long=", "line"}, "longline\r\n", false, false},
		{"soft break with padding", []string{"long=  ", "line"}, "longline\r\n", false, false},
		{"trailing whitespace", []string{"a  ", "b\t"}, "a\r\nb\r\n", false, false},
		{"boundary takes the last line end", []string{"a", "b"}, "a\r\nb", false, true},
		{"stray equals", []string{"x = 5%, y=zz"}, "x = 5%, y=zz\r\n", true, false},
		{"equals at the very end", []string{"end="}, "end", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out collect
			var d qpDecoder
			d.reset(&out)
			for _, l := range tt.lines {
				d.content([]byte(l))
				d.eol(termCRLF)
			}
			bad := d.close(!tt.boundary)
			if out.String() != tt.want || bad != tt.bad {
				t.Errorf("decoded %q, bad %v; want %q, %v", out.String(), bad, tt.want, tt.bad)
			}
		})
	}
}

// TestQPPieces feeds a line split at every position, so an escape is cut in two.
func TestQPPieces(t *testing.T) {
	line := "a=C3=A9b  =3D= "
	for i := 0; i <= len(line); i++ {
		var out collect
		var d qpDecoder
		d.reset(&out)
		d.content([]byte(line[:i]))
		d.content([]byte(line[i:]))
		d.eol(termLF)
		d.content([]byte("x"))
		d.eol(termLF)
		if d.close(true) || out.String() != "aéb  =x\n" {
			t.Errorf("split at %d: decoded %q", i, out.String())
		}
	}
}

func split(s string, n int) []string {
	if n <= 1 || len(s) < n {
		return []string{s}
	}
	var parts []string
	size := len(s) / n
	for len(s) > size {
		parts = append(parts, s[:size])
		s = s[size:]
	}
	return append(parts, s)
}

func TestLookupCharset(t *testing.T) {
	for _, name := range []string{"utf-8", "UTF8", "us-ascii", "iso-8859-1", "latin1", "gb2312", "GBK", "gb18030",
		"big5", "big5-hkscs", "iso-2022-jp", "shift_jis", "sjis", "euc-kr", "ks_c_5601-1987", "windows-1250",
		"windows-1258", "cp1252", "koi8-r", "koi8-u", "iso-8859-15", "tis-620", "utf-7", `"utf-8"`, "cp850"} {
		if _, ok := lookupCharset(name); !ok {
			t.Errorf("lookupCharset(%q) not found", name)
		}
	}
	for _, name := range []string{"", "x-unknown", "iso-2022-kr-bogus", "none"} {
		if _, ok := lookupCharset(name); ok {
			t.Errorf("lookupCharset(%q) found, want unknown", name)
		}
	}
}

// TestAttachmentHash checks that an attachment's hash is over its decoded bytes, whatever its
// transfer encoding and line ends.
func TestAttachmentHash(t *testing.T) {
	content := "line one\r\nline two"
	sum := sha256.Sum256([]byte(content))
	want := hex.EncodeToString(sum[:])
	bodies := map[string]string{
		"7bit":             "line one\r\nline two",
		"base64":           base64Std([]byte(content)),
		"quoted-printable": "line =\r\none\r\nline t=\r\nwo",
	}
	for cte, body := range bodies {
		raw := "From: a@x.example\r\nMessage-ID: <h@x>\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\n" +
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
			"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" +
			body + "\r\n--b--\r\n"
		m, err := Parse(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Attachments) != 1 || m.Attachments[0].SHA256 != want || m.Attachments[0].Size != int64(len(content)) {
			t.Errorf("%s: attachments %+v, want size %d sha256 %s", cte, m.Attachments, len(content), want)
		}
		if len(m.Problems) > 0 {
			t.Errorf("%s: problems %+v", cte, m.Problems)
		}
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

package mail

import (
	"encoding/base64"
	"slices"
	"strings"
	"unicode/utf8"
)

// Field is one header field as received: folding removed, value not decoded, always valid UTF-8.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Header is a header section in the order it was received.
type Header []Field

// Get returns the value of the first field called name (case-insensitive), or "".
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every field called name (case-insensitive), in order.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

func (h Header) has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// DecodeHeader decodes the RFC 2047 encoded words in a header value and returns UTF-8. It accepts
// what real mail sends: any charset, words split in the middle of a character, unpadded base64,
// missing spaces between words. Raw bytes that are not UTF-8 are read as windows-1252.
func DecodeHeader(raw string) string {
	var d wordDecoder
	return d.decode(raw)
}

// wordDecoder decodes encoded words, reporting problems to a parse when it has one.
type wordDecoder struct {
	fallback *charset                  // for raw 8-bit text; windows-1252 when nil
	problem  func(code, detail string) // may be nil
	field    string                    // header name, for problem details
	raw      bool                      // raw 8-bit text had to be read in the fallback charset

	out     strings.Builder
	pend    []byte // decoded bytes of adjacent words in one charset, converted together
	pendCS  string
	carry   []byte // base64 characters left over from a word that was split mid-quantum
	scratch []byte
}

func (d *wordDecoder) report(code, detail string) {
	if d.problem != nil {
		if d.field != "" {
			detail += " in " + d.field
		}
		d.problem(code, detail)
	}
}

func (d *wordDecoder) decode(s string) string {
	if !strings.Contains(s, "=?") {
		t, ok := decodeText(s, d.fallback)
		d.raw = d.raw || !ok
		return t
	}
	d.out.Reset()
	d.out.Grow(len(s))
	lastWord := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			d.flush()
			d.text(s)
			break
		}
		w, n, ok := parseEncodedWord(s[i:])
		if n < 0 { // no "?=" anywhere after: no word can follow
			d.flush()
			d.text(s)
			break
		}
		if !ok {
			d.flush()
			d.text(s[:i+2])
			s = s[i+2:]
			lastWord = false
			continue
		}
		// Whitespace between two encoded words is folding, not text (RFC 2047 section 6.2).
		if !lastWord || strings.TrimLeft(s[:i], " \t\r\n") != "" {
			d.flush()
			d.text(s[:i])
		}
		d.word(w)
		lastWord = true
		s = s[i+n:]
	}
	d.flush()
	return d.out.String()
}

func (d *wordDecoder) text(s string) {
	t, ok := decodeText(s, d.fallback)
	d.raw = d.raw || !ok
	d.out.WriteString(t)
}

type encodedWord struct {
	charset string
	b64     bool
	text    string
}

// parseEncodedWord reads "=?charset?B|Q?text?=" at the start of s and returns its length, or
// -1 when s holds no "?=" at all.
func parseEncodedWord(s string) (w encodedWord, n int, ok bool) {
	rest := s[2:]
	q := strings.IndexByte(rest[:min(len(rest), 66)], '?')
	if q <= 0 || q > 64 || len(rest) < q+3 || rest[q+2] != '?' {
		return w, 0, false
	}
	w.charset = rest[:q]
	if strings.ContainsAny(w.charset, " \t\r\n=\"") {
		return w, 0, false
	}
	switch rest[q+1] {
	case 'B', 'b':
		w.b64 = true
	case 'Q', 'q':
	default:
		return w, 0, false
	}
	body := rest[q+3:]
	end := strings.Index(body, "?=")
	if end < 0 {
		return w, -1, false
	}
	w.text = body[:end]
	return w, 2 + q + 3 + end + 2, true
}

func (d *wordDecoder) word(w encodedWord) {
	if d.pendCS != "" && !strings.EqualFold(d.pendCS, w.charset) {
		d.flush()
	}
	d.pendCS = w.charset
	if !w.b64 {
		d.finishCarry()
		d.pend = appendQ(d.pend, w.text)
		return
	}
	clean := strings.Map(dropSpace, w.text)
	text := strings.TrimRight(clean, "=")
	padded := len(text) != len(clean)
	d.scratch = append(append(d.scratch[:0], d.carry...), text...)
	d.carry = d.carry[:0]
	full := len(d.scratch) &^ 3
	if !padded {
		// An unpadded word may end mid-quantum when a mailer split one base64 run into words.
		d.carry = append(d.carry, d.scratch[full:]...)
		d.scratch = d.scratch[:full]
	}
	d.pend = d.appendB64(d.pend, d.scratch)
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
		return -1
	}
	return r
}

func (d *wordDecoder) appendB64(dst, src []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, base64.RawStdEncoding.DecodedLen(len(src)))[:n+base64.RawStdEncoding.DecodedLen(len(src))]
	m, err := base64.RawStdEncoding.Decode(dst[n:], src)
	if err != nil {
		d.report("bad-encoded-word", "invalid base64")
		// Keep what decodes: drop characters outside the alphabet and try once more.
		clean := make([]byte, 0, len(src))
		for _, c := range src {
			if b64value(c) >= 0 {
				clean = append(clean, c)
			}
		}
		if len(clean)%4 == 1 {
			clean = clean[:len(clean)-1]
		}
		m, _ = base64.RawStdEncoding.Decode(dst[n:], clean)
	}
	return dst[:n+m]
}

// finishCarry decodes base64 left over from the previous word as a final, unpadded quantum.
func (d *wordDecoder) finishCarry() {
	if len(d.carry) == 0 {
		return
	}
	c := d.carry
	if len(c) == 1 {
		c = c[:0] // one character carries no whole byte
	}
	d.pend = d.appendB64(d.pend, c)
	d.carry = d.carry[:0]
}

func (d *wordDecoder) flush() {
	d.finishCarry()
	if d.pendCS == "" {
		return
	}
	cs, ok := lookupCharset(d.pendCS)
	if !ok {
		d.report("unknown-charset", "charset "+quote(d.pendCS))
		t, _ := decodeText(string(d.pend), nil)
		d.out.WriteString(t)
	} else {
		d.out.WriteString(cs.decode(d.pend))
	}
	d.pend = d.pend[:0]
	d.pendCS = ""
}

// appendQ decodes the Q encoding: "_" is a space and "=XX" a byte; a stray "=" stays as it is.
func appendQ(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0:
			dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// quote shortens s for a problem detail and makes it printable UTF-8.
func quote(s string) string {
	const max = 80
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s) + `"`
}

package mail

import (
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/unicode/norm"
)

// charset turns bytes labelled with a MIME charset name into UTF-8.
type charset struct {
	enc       encoding.Encoding // nil for UTF-8 and UTF-7
	utf7      bool
	nfc       bool       // the charset writes accents as combining marks (windows-1258)
	asciiSafe bool       // ASCII bytes decode to themselves, so pure ASCII input can skip the decoder
	alt       []*charset // candidates: the first that decodes without U+FFFD wins
}

var (
	utf8Charset  = &charset{}
	windows1252  = newCharset(charmap.Windows1252)
	gb18030      = newCharset(simplifiedchinese.GB18030)
	uhc          = newCharset(korean.EUCKR)
	windows1258  = &charset{enc: charmap.Windows1258, nfc: true, asciiSafe: true}
	utf7         = &charset{utf7: true}
	japaneseRaw  = &charset{alt: []*charset{newCharset(japanese.ShiftJIS), newCharset(japanese.EUCJP)}}
	charsetCache sync.Map // lower-case name -> *charset; known names only, so it stays small

	charsetQuirks = map[string]*charset{
		// Mail labels GBK and GB18030 text as GB2312 all the time; GB18030 decodes all three.
		"gb2312": gb18030, "gb_2312-80": gb18030, "csgb2312": gb18030, "euc-cn": gb18030,
		"x-euc-cn": gb18030, "chinese": gb18030, "gbk": gb18030, "x-gbk": gb18030, "cp936": gb18030,
		"ms936": gb18030, "windows-936": gb18030,
		"hz-gb-2312": newCharset(simplifiedchinese.HZGB2312),
		// Outlook's names for Korean; EUC-KR in x/text is the UHC superset.
		"ks_c_5601-1987": uhc, "ks_c_5601": uhc, "ksc5601": uhc, "ksc_5601": uhc, "cp949": uhc,
		"uhc": uhc, "windows-949": uhc,
		"windows-1258": windows1258, "cp1258": windows1258,
		"utf-7": utf7, "unicode-1-1-utf-7": utf7, "x-unicode-2-0-utf-7": utf7,
		"utf-8": utf8Charset, "utf8": utf8Charset,
		// 8-bit bytes under an ASCII label are nearly always Windows Latin text.
		"us-ascii": windows1252, "ascii": windows1252,
	}
)

// lookupCharset finds the decoder for a MIME charset label; ok is false for labels it does not know.
func lookupCharset(name string) (*charset, bool) {
	name = strings.Trim(strings.TrimSpace(name), `"'`)
	if i := strings.IndexByte(name, '*'); i >= 0 { // RFC 2231 language suffix: utf-8*en
		name = name[:i]
	}
	if name == "" {
		return nil, false
	}
	key := strings.ToLower(name)
	if c, ok := charsetQuirks[key]; ok {
		return c, true
	}
	if c, ok := charsetCache.Load(key); ok {
		return c.(*charset), true
	}
	enc, err := htmlindex.Get(key)
	if err != nil || enc == nil || enc == encoding.Replacement {
		enc, err = ianaindex.MIME.Encoding(key)
		if err != nil || enc == nil {
			if enc, err = ianaindex.IANA.Encoding(key); err != nil || enc == nil {
				return nil, false
			}
		}
	}
	c := newCharset(enc)
	if enc == encoding.Nop || isUTF8(enc) {
		c = utf8Charset
	}
	charsetCache.Store(key, c)
	return c, true
}

func isUTF8(enc encoding.Encoding) bool {
	name, err := htmlindex.Name(enc)
	return err == nil && name == "utf-8"
}

// decode converts b to UTF-8. Bytes the charset cannot map become U+FFFD.
func (c *charset) decode(b []byte) string {
	switch {
	case len(c.alt) > 0:
		for _, a := range c.alt {
			if s := a.decode(b); !strings.ContainsRune(s, utf8.RuneError) {
				return s
			}
		}
		return c.alt[0].decode(b)
	case c.utf7:
		return decodeUTF7(b)
	case c.enc == nil:
		if utf8.Valid(b) {
			return string(b)
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	case c.asciiSafe && isASCII(b):
		return string(b)
	}
	out, err := c.enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	if c.nfc {
		out = norm.NFC.Bytes(out)
	}
	return string(out)
}

// asciiProbe holds the ASCII bytes that stateful charsets (ISO-2022-JP, HZ, UTF-16) treat specially.
const asciiProbe = "ab~{c}~+-\x1b$B\x1b(B"

func newCharset(enc encoding.Encoding) *charset {
	c := &charset{enc: enc}
	out, err := enc.NewDecoder().String(asciiProbe)
	c.asciiSafe = err == nil && out == asciiProbe
	return c
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// rawFallback chooses how to read raw 8-bit header text in a message that declares charset c.
func rawFallback(c *charset, label string) (*charset, string) {
	switch {
	case c == nil || c == utf8Charset || c == windows1252 || c.utf7:
		return windows1252, "windows-1252"
	case !c.asciiSafe:
		// A 7-bit charset (ISO-2022-JP) cannot hold raw 8-bit bytes; Japanese mailers that
		// send them use Shift_JIS or EUC-JP.
		if name, _ := htmlindex.Name(c.enc); name == "iso-2022-jp" {
			return japaneseRaw, "shift_jis or euc-jp"
		}
		return windows1252, "windows-1252"
	}
	return c, label
}

// decodeText turns raw header bytes into UTF-8: kept when they already are UTF-8, otherwise read in
// the fallback charset. ok is false when the fallback was needed.
func decodeText(s string, fallback *charset) (string, bool) {
	if utf8.ValidString(s) {
		return s, true
	}
	if fallback == nil || fallback == utf8Charset {
		fallback = windows1252
	}
	return fallback.decode([]byte(s)), false
}

// decodeUTF7 decodes RFC 2152 UTF-7, which x/text does not provide and some mailers still send.
func decodeUTF7(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '+' {
			if c < utf8.RuneSelf {
				sb.WriteByte(c)
			} else {
				sb.WriteRune(utf8.RuneError)
			}
			continue
		}
		j := i + 1
		if j < len(b) && b[j] == '-' { // "+-" is a literal plus
			sb.WriteByte('+')
			i = j
			continue
		}
		var bits, nbits uint32
		var high rune
		for ; j < len(b); j++ {
			v := b64value(b[j])
			if v < 0 {
				break
			}
			bits = bits<<6 | uint32(v)
			nbits += 6
			if nbits >= 16 {
				nbits -= 16
				u := rune(bits >> nbits & 0xffff)
				switch {
				case u >= 0xd800 && u < 0xdc00:
					high = u
				case u >= 0xdc00 && u < 0xe000 && high != 0:
					sb.WriteRune((high-0xd800)<<10 + (u - 0xdc00) + 0x10000)
					high = 0
				default:
					sb.WriteRune(u)
					high = 0
				}
			}
		}
		if j < len(b) && b[j] == '-' {
			j++ // the '-' only ends the shifted run
		}
		i = j - 1
	}
	return sb.String()
}

func b64value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

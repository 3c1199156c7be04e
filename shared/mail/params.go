package mail

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bounds on what one Content-Type or Content-Disposition value may make us keep.
const (
	maxParams   = 64
	maxSections = 256
)

// mediaType splits a Content-Type or Content-Disposition value into its lower-case type and the
// rest. It accepts a missing ";" before the first parameter and quotes around the type.
func mediaType(v string) (typ, rest string) {
	v = strings.TrimSpace(v)
	typ, rest, _ = strings.Cut(v, ";")
	typ = strings.TrimSpace(typ)
	if i := strings.IndexAny(typ, " \t"); i >= 0 && strings.Contains(typ[i:], "=") {
		typ, rest = typ[:i], typ[i:]+";"+rest
	}
	return strings.ToLower(strings.Trim(typ, `"' `)), rest
}

// validMediaType reports whether t looks like type/subtype.
func validMediaType(t string) bool {
	slash := strings.IndexByte(t, '/')
	if slash <= 0 || slash == len(t)-1 || strings.Count(t, "/") != 1 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

type paramSection struct {
	idx int
	ext bool
	val string
}

// parseParams reads "; name=value" parameters leniently: quoted or bare values, duplicates (the
// first wins), RFC 2231 continuations, charsets and percent-encoding, and RFC 2047 words in
// values, which mailers use for file names although the RFC forbids it.
func parseParams(s string, d *wordDecoder) map[string]string {
	var params map[string]string
	var sections map[string][]paramSection
	n := 0
	for len(s) > 0 && n < maxParams+maxSections {
		s = strings.TrimLeft(s, " \t\r\n;")
		if s == "" {
			break
		}
		eq := strings.IndexAny(s, "=;")
		if eq < 0 {
			break
		}
		if s[eq] == ';' { // a parameter without a value
			s = s[eq:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		var val string
		val, s = paramValue(s)
		n++
		if name == "" {
			continue
		}
		if star := strings.IndexByte(name, '*'); star > 0 && utf8.ValidString(name) {
			base, suffix := name[:star], name[star+1:]
			sec := paramSection{val: val}
			if suffix == "" {
				sec.ext = true
			} else {
				if strings.HasSuffix(suffix, "*") {
					sec.ext, suffix = true, suffix[:len(suffix)-1]
				}
				idx, err := strconv.Atoi(suffix)
				if err != nil || idx < 0 || idx >= maxSections {
					continue
				}
				sec.idx = idx
			}
			if sections == nil {
				sections = make(map[string][]paramSection)
			}
			if len(sections[base]) < maxSections {
				sections[base] = append(sections[base], sec)
			}
			continue
		}
		if !utf8.ValidString(name) {
			continue
		}
		if params == nil {
			params = make(map[string]string)
		}
		if _, dup := params[name]; !dup && len(params) < maxParams {
			if name == "boundary" {
				params[name] = val // matched byte for byte against delimiter lines
			} else {
				params[name] = d.decode(val)
			}
		}
	}
	for base, secs := range sections {
		if params == nil {
			params = make(map[string]string)
		}
		// The RFC 2231 form wins over a plain one: mailers send both, the plain one for old readers.
		params[base] = joinSections(secs, d)
	}
	return params
}

// paramValue reads a quoted string or a token up to the next ";" and returns the rest of s.
func paramValue(s string) (val, rest string) {
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch c := s[i]; c {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String(), s[i+1:]
			default:
				b.WriteByte(c)
			}
		}
		return b.String(), "" // unterminated: the rest of the value
	}
	end := strings.IndexByte(s, ';')
	if end < 0 {
		end = len(s)
	}
	return strings.TrimSpace(s[:end]), s[end:]
}

func joinSections(secs []paramSection, d *wordDecoder) string {
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].idx < secs[j].idx })
	var raw []byte
	var ext strings.Builder // consecutive encoded sections, decoded together: some mailers split "%E2" across them
	cs := ""
	for i, sec := range secs {
		if i > 0 && sec.idx == secs[i-1].idx {
			continue
		}
		v := sec.val
		if !sec.ext {
			raw = appendPercentDecoded(raw, ext.String())
			ext.Reset()
			raw = append(raw, v...)
			continue
		}
		if i == 0 {
			// charset'language'value; the charset is only allowed on the first section.
			if a := strings.IndexByte(v, '\''); a >= 0 {
				if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
					cs, v = v[:a], v[a+1+b+1:]
				}
			}
		}
		ext.WriteString(v)
	}
	raw = appendPercentDecoded(raw, ext.String())
	if cs == "" {
		return d.decode(string(raw))
	}
	c, ok := lookupCharset(cs)
	if !ok {
		d.report("unknown-charset", "charset "+quote(cs))
		t, _ := decodeText(string(raw), d.fallback)
		return t
	}
	return c.decode(raw)
}

func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
			dst = append(dst, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

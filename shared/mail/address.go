package mail

import (
	"fmt"
	"strings"
)

// Address is one mailbox: Name is decoded to UTF-8, Address is as written with its domain in
// lower case.
type Address struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// maxAddresses bounds one header's list; mailing-list exploders can send thousands.
const maxAddresses = 1000

// ParseAddressList reads an address list header value such as From, To or Reply-To. It is lenient:
// it returns every address it can read, decodes RFC 2047 names, and accepts groups, comments,
// unquoted display names and missing angle brackets. The error, when not nil, names the parts it
// could not read; the addresses it returns are still good.
func ParseAddressList(value string) ([]Address, error) {
	var bad []string
	d := wordDecoder{problem: func(code, detail string) {}}
	list := parseAddressList(value, &d, func(s string) { bad = append(bad, s) })
	if len(bad) > 0 {
		return list, fmt.Errorf("mail: cannot read address %s", strings.Join(bad, ", "))
	}
	return list, nil
}

// parseAddressList splits value into mailboxes, calling bad with each element it cannot read.
func parseAddressList(value string, d *wordDecoder, bad func(string)) []Address {
	var list []Address
	var phrase strings.Builder
	var angle, comment string
	hasAngle, phraseAt := false, false
	start := 0 // where the current element began, for bad()

	end := func(i int) {
		defer func() {
			phrase.Reset()
			angle, comment, hasAngle, phraseAt = "", "", false, false
			start = i + 1
		}()
		if len(list) >= maxAddresses {
			return
		}
		text := strings.TrimSpace(phrase.String())
		if hasAngle {
			addr := cleanAddr(angle)
			if addr == "" && text == "" {
				return
			}
			// An empty address with a name ("MAILER-DAEMON <>") is what bounces carry; keep the name.
			name := text
			if name == "" {
				name = comment
			}
			list = append(list, Address{Name: decodeName(name, d), Address: lowerDomain(addr)})
			return
		}
		if text == "" {
			return // an empty element: "a@example.com, , b@example.com"
		}
		fields := strings.Fields(text)
		at := -1 // the last word with an "@": a quoted name before it may hold one too
		for j, f := range fields {
			if strings.Contains(f, "@") {
				at = j
			}
		}
		if at < 0 {
			if len(fields) == 1 && isLocalPart(fields[0]) {
				// An unqualified local address ("postmaster"), as local mail systems write it.
				list = append(list, Address{Name: decodeName(comment, d), Address: fields[0]})
				return
			}
			bad(quote(strings.TrimSpace(value[start:min(i, len(value))])))
			return
		}
		addr := cleanAddr(fields[at])
		name := strings.Join(append(fields[:at:at], fields[at+1:]...), " ")
		if name == "" {
			name = comment
		}
		list = append(list, Address{Name: decodeName(name, d), Address: lowerDomain(addr)})
	}

	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '"':
			j := i + 1
			for ; j < len(value) && value[j] != '"'; j++ {
				if value[j] == '\\' && j+1 < len(value) {
					j++
					phrase.WriteByte(value[j])
					continue
				}
				phrase.WriteByte(value[j])
			}
			i = j
		case '(':
			j, text := readComment(value, i)
			if comment == "" {
				comment = strings.TrimSpace(text)
			}
			phrase.WriteByte(' ')
			i = j
		case '<':
			j := i + 1
			inQuote := false
			for ; j < len(value); j++ {
				if value[j] == '"' {
					inQuote = !inQuote
				} else if value[j] == '>' && !inQuote {
					break
				}
			}
			if !hasAngle {
				angle, hasAngle = value[i+1:min(j, len(value))], true
			}
			i = j
		case ',':
			end(i)
		case ';':
			end(i)
		case ':':
			// A group: "Team: a@example.com, b@example.com;". The group name is not a mailbox.
			if !hasAngle && !phraseAt {
				phrase.Reset()
				comment = ""
				start = i + 1
				continue
			}
			phrase.WriteByte(c)
		case '@':
			phraseAt = true
			phrase.WriteByte(c)
		default:
			phrase.WriteByte(c)
		}
	}
	end(len(value))
	return list
}

// readComment reads a parenthesised comment starting at value[i], nesting allowed, and returns
// the index of its closing parenthesis and its text.
func readComment(value string, i int) (int, string) {
	depth := 0
	var b strings.Builder
	for j := i; j < len(value); j++ {
		switch value[j] {
		case '\\':
			if j+1 < len(value) {
				j++
				b.WriteByte(value[j])
			}
			continue
		case '(':
			depth++
			if depth == 1 {
				continue
			}
		case ')':
			depth--
			if depth == 0 {
				return j, b.String()
			}
		}
		b.WriteByte(value[j])
	}
	return len(value), b.String()
}

// cleanAddr trims an addr-spec: spaces, an obsolete source route ("@relay:user@host") and a
// mailto: prefix.
func cleanAddr(a string) string {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "@") {
		if i := strings.IndexByte(a, ':'); i >= 0 {
			a = a[i+1:]
		}
	}
	if len(a) > 7 && strings.EqualFold(a[:7], "mailto:") {
		a = a[7:]
	}
	return strings.Trim(strings.TrimSpace(a), "<>")
}

func isLocalPart(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func lowerDomain(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 || strings.ToLower(a[at+1:]) == a[at+1:] {
		return a
	}
	return a[:at+1] + strings.ToLower(a[at+1:])
}

func decodeName(s string, d *wordDecoder) string {
	s = strings.TrimSpace(d.decode(s))
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"') {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

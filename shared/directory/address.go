package directory

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"
)

// Limits from RFC 5321 section 4.5.3.1: a local part of 64 octets, a path of 256 octets including
// the angle brackets (so 254 for the address), a domain label of 63.
const (
	maxLocalPart = 64
	maxAddress   = 254
	maxDomain    = 253
	maxLabel     = 63
)

// idnaProfile is IDNA2008 as registrars apply it (UTS #46 mapping, so "Bücher.Example" becomes
// "xn--bcher-kva.example"), with the hyphen and length rules that make a name registrable.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// NormalizeDomain returns the lower-case ASCII form of a domain name and its Unicode form for
// people, or an error saying what is wrong with it.
func NormalizeDomain(name string) (ascii, unicode string, err error) {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if name == "" {
		return "", "", fmt.Errorf("empty domain")
	}
	if strings.HasPrefix(name, "[") {
		// RFC 5321 address literals are legal but SES neither receives nor sends for them.
		return "", "", fmt.Errorf("address literals are not supported; use a domain name")
	}
	ascii, err = idnaProfile.ToASCII(name)
	if err != nil {
		return "", "", fmt.Errorf("%q is not a valid domain name: %v", name, err)
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > maxDomain {
		return "", "", fmt.Errorf("domain is longer than %d characters", maxDomain)
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", "", fmt.Errorf("%q is not a fully qualified domain name", name)
	}
	for _, l := range labels {
		if l == "" || len(l) > maxLabel {
			return "", "", fmt.Errorf("%q has an empty or over-long label", name)
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", "", fmt.Errorf("%q ends in a numeric label", name)
	}
	unicode, err = idna.Display.ToUnicode(ascii)
	if err != nil {
		unicode = ascii
	}
	return ascii, unicode, nil
}

// NormalizeAddress checks an address against RFC 5321's Mailbox syntax (which RFC 5322's addr-spec
// must also meet to be usable on the wire) and returns it lower-cased with its domain in ASCII.
// The local part must be ASCII because SES does not offer SMTPUTF8.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", fmt.Errorf("empty address")
	}
	if strings.ContainsAny(addr, "\r\n\x00") {
		return "", fmt.Errorf("address contains a line break or NUL")
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", fmt.Errorf("%q has no @", addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if err := checkLocalPart(local); err != nil {
		return "", fmt.Errorf("%q: %v", addr, err)
	}
	ascii, _, err := NormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	out := strings.ToLower(local) + "@" + ascii
	if len(out) > maxAddress {
		return "", fmt.Errorf("address is longer than %d characters", maxAddress)
	}
	return out, nil
}

// DomainOf returns the domain part of a normalised address.
func DomainOf(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

func checkLocalPart(local string) error {
	if local == "" {
		return fmt.Errorf("empty local part")
	}
	if len(local) > maxLocalPart {
		return fmt.Errorf("local part is longer than %d characters", maxLocalPart)
	}
	if local[0] == '"' {
		return checkQuotedString(local)
	}
	// Dot-string: atoms of atext separated by single dots.
	for _, atom := range strings.Split(local, ".") {
		if atom == "" {
			return fmt.Errorf("local part has an empty atom (leading, trailing or double dot)")
		}
		for i := 0; i < len(atom); i++ {
			if !isAtext(atom[i]) {
				if atom[i] >= 0x80 {
					return fmt.Errorf("local part is not ASCII (SES does not support SMTPUTF8)")
				}
				return fmt.Errorf("local part has %q, which needs quoting", atom[i])
			}
		}
	}
	return nil
}

// checkQuotedString accepts RFC 5321's Quoted-string: printable ASCII other than '"' and '\', or a
// backslash pair.
func checkQuotedString(s string) error {
	if len(s) < 2 || s[len(s)-1] != '"' {
		return fmt.Errorf("unterminated quoted local part")
	}
	body := s[1 : len(s)-1]
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\':
			if i+1 >= len(body) || body[i+1] < 0x20 || body[i+1] > 0x7e {
				return fmt.Errorf("bad escape in quoted local part")
			}
			i++
		case c == '"':
			return fmt.Errorf("unescaped quote in quoted local part")
		case c < 0x20 || c > 0x7e:
			return fmt.Errorf("quoted local part has a control or non-ASCII character")
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

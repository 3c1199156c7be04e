package seslocal

import (
	"mime"
	netmail "net/mail"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // legacy charsets in headers and parts of Raw mail
	"github.com/emersion/go-message/mail"
)

// checkAddress validates one address parameter as SES does: no line breaks (they would inject
// headers), 7-bit ASCII only since SES has no SMTPUTF8 (Punycode for the domain, RFC 2047
// encoded-words for a display name), and an addr-spec with a domain. It returns the bare address.
func checkAddress(field, s string) (string, *apiError) {
	if strings.ContainsAny(s, "\r\n") {
		return "", badRequest("%s %q contains a line break; header injection is not allowed.", field, s)
	}
	if strings.TrimSpace(s) == "" {
		return "", badRequest("%s contains an empty address.", field)
	}
	if !isASCII(s) {
		return "", badRequest("%s %q: %s", field, s, nonASCIIReason(s))
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", badRequest("%s %q: %s", field, s, addressError(err))
	}
	return a.Address, nil
}

// nonASCIIReason says which part of an address breaks SES's 7-bit rule, so the fix is obvious.
func nonASCIIReason(s string) string {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return "addresses must be 7-bit ASCII."
	}
	local, domain, _ := strings.Cut(a.Address, "@")
	switch {
	case !isASCII(local):
		return "Local address contains non-ASCII characters; SES does not support SMTPUTF8."
	case !isASCII(domain):
		return "Domain contains non-ASCII characters; encode it with Punycode."
	}
	return "Display name contains non-ASCII characters; encode it with RFC 2047 encoded-words."
}

func addressError(err error) string {
	if strings.Contains(err.Error(), "missing @") || strings.Contains(err.Error(), "missing '@'") {
		return "Missing final '@domain'."
	}
	return "Illegal address: " + err.Error() + "."
}

// parseHeaderAddresses reads an address header of a Raw message. Display names may carry 8-bit
// text, as much real-world mail does, but the addresses themselves must be deliverable without
// SMTPUTF8.
func parseHeaderAddresses(name, v string) ([]string, *apiError) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	list, err := mail.ParseAddressList(v)
	if err != nil {
		return nil, badRequest("Illegal address in %s header: %s", name, addressError(err))
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		if !isASCII(a.Address) {
			return nil, badRequest("Illegal address %q in %s header: %s", a.Address, name, nonASCIIReason(a.Address))
		}
		out = append(out, a.Address)
	}
	return out, nil
}

// decodeHeaderText decodes RFC 2047 encoded-words for display; undecodable text is shown as is.
func decodeHeaderText(v string) string {
	dec := mime.WordDecoder{CharsetReader: message.CharsetReader}
	s, err := dec.DecodeHeader(v)
	if err != nil {
		return v
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

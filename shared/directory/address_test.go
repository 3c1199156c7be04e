package directory

import (
	"strings"
	"testing"
)

func TestNormalizeAddress(t *testing.T) {
	// The longest address RFC 5321 §4.5.3.1.3 allows in a path: 256 octets including the angle
	// brackets, so 254 for the address itself.
	local64 := strings.Repeat("a", 64)
	longest := local64 + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain dot-atom", "anna@example.com", "anna@example.com"},
		{"dot-atom with dots and atext specials (RFC 5322 §3.2.3)", "a.b+tag!#$%&'*/=?^_`{|}~-@example.com", "a.b+tag!#$%&'*/=?^_`{|}~-@example.com"},
		{"upper case folded", "ANNA@Example.COM", "anna@example.com"},
		{"surrounding space trimmed", "  anna@example.com\t", "anna@example.com"},
		{"trailing root dot of the domain dropped", "anna@example.com.", "anna@example.com"},
		// RFC 5322 §3.4.1: a local part is a dot-atom or a quoted-string; RFC 5321 §4.1.2 gives the
		// Quoted-string that SMTP carries.
		{"quoted local part with a space", `"john doe"@example.com`, `"john doe"@example.com`},
		{"quoted local part with an escaped quote", `"a\"b"@example.com`, `"a\"b"@example.com`},
		{"quoted local part with an @", `"a@b"@example.com`, `"a@b"@example.com`},
		{"local part of exactly 64 octets (RFC 5321 §4.5.3.1.1)", local64 + "@example.com", local64 + "@example.com"},
		{"address of exactly 254 octets", longest, longest},
		{"IDN domain to punycode", "anna@bücher.example", "anna@xn--bcher-kva.example"},
		{"IDN domain in upper case", "ANNA@BÜCHER.EXAMPLE", "anna@xn--bcher-kva.example"},
		{"Chinese domain", "info@例子.中国", "info@xn--fsqu00a.xn--fiqs8s"},
		{"Vietnamese domain", "lan@việtnam.vn", "lan@xn--vitnam-jk8b.vn"},
		{"Vietnamese domain with several marks", "lan@tiếngviệt.vn", "lan@xn--tingvit-5t4cyc.vn"},
		{"punycode domain kept", "anna@xn--bcher-kva.example", "anna@xn--bcher-kva.example"},
		{"alphanumeric TLD", "a@example.c0m", "a@example.c0m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAddress(tt.in)
			if err != nil {
				t.Fatalf("NormalizeAddress(%q) error = %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeAddress(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeAddressRefuses(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // a part of the message
	}{
		{"empty", "", "empty address"},
		// RFC 5322 §3.4.1: addr-spec = local-part "@" domain, neither part empty.
		{"no @", "anna.example.com", "has no @"},
		{"empty local part", "@example.com", "empty local part"},
		{"empty domain", "anna@", "empty domain"},
		// RFC 5321 §4.1.2 Dot-string (RFC 5322 §3.4.1 dot-atom): atoms separated by single dots.
		{"leading dot", ".anna@example.com", "empty atom"},
		{"trailing dot", "anna.@example.com", "empty atom"},
		{"double dot", "an..na@example.com", "empty atom"},
		{"space needs quoting", "an na@example.com", "needs quoting"},
		{"parenthesis needs quoting", "an(na)@example.com", "needs quoting"},
		// RFC 5321 §4.5.3.1.1: a local part of at most 64 octets.
		{"65-octet local part", strings.Repeat("a", 65) + "@example.com", "longer than 64"},
		// RFC 5321 §4.5.3.1.3: a path of at most 256 octets, 254 without the angle brackets.
		{"255-octet address", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com", "longer than 254"},
		// RFC 5321 §4.5.3.1.2: a label of at most 63 octets.
		{"64-octet label", "a@" + strings.Repeat("b", 64) + ".com", "not a valid domain name"},
		{"non-ASCII local part (SMTPUTF8)", "ánna@example.com", "SMTPUTF8"},
		{"non-ASCII in a quoted local part", `"ánna"@example.com`, "non-ASCII"},
		{"CR LF header injection", "a@b.com\r\nBcc: x@y.com", "line break"},
		{"LF alone", "a@b.com\nBcc: x@y.com", "line break"},
		{"NUL", "a\x00@example.com", "NUL"},
		{"unterminated quoted local part", `"anna@example.com`, "unterminated"},
		{"unescaped quote inside quotes", `"a"b"@example.com`, "unescaped quote"},
		{"control character inside quotes", "\"a\tb\"@example.com", "control"},
		// RFC 5321 §4.1.2 allows an address-literal (§4.1.3) as the domain; SES cannot use one.
		{"IPv4 address literal", "anna@[192.0.2.1]", "address literals"},
		{"IPv6 address literal", "anna@[IPv6:2001:db8::1]", "address literals"},
		// RFC 5321 §2.3.5: a domain in an address is fully qualified.
		{"single-label domain", "anna@localhost", "not a fully qualified"},
		{"numeric TLD", "anna@example.123", "numeric label"},
		{"dotted quad without brackets", "anna@192.0.2.1", "numeric label"},
		{"empty label in domain", "anna@example..com", "not a valid domain name"},
		{"leading dot in domain", "anna@.example.com", "not a valid domain name"},
		{"leading hyphen in a label", "anna@-bad.example", "not a valid domain name"},
		{"hyphens in the third and fourth positions", "anna@ab--c.example", "not a valid domain name"},
		{"underscore in domain", "anna@exa_mple.com", "not a valid domain name"},
		{"invalid punycode", "anna@xn--zz.example", "not a valid domain name"},
		{"zero width joiner in a label", "anna@b\u200dc.example", "not a valid domain name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAddress(tt.in)
			if err == nil {
				t.Fatalf("NormalizeAddress(%q) = %q, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeAddress(%q) error = %q, want it to mention %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		name              string
		in                string
		wantASCII, wantUn string
	}{
		{"ASCII lower-cased", "Example.COM", "example.com", "example.com"},
		{"German IDN", "Bücher.Example", "xn--bcher-kva.example", "bücher.example"},
		{"punycode shown in Unicode", "xn--bcher-kva.example", "xn--bcher-kva.example", "bücher.example"},
		{"Chinese", "例子.中国", "xn--fsqu00a.xn--fiqs8s", "例子.中国"},
		{"Vietnamese", "việtnam.vn", "xn--vitnam-jk8b.vn", "việtnam.vn"},
		{"UTS #46 mapping of a ligature", "ﬀ.example", "ff.example", "ff.example"},
		{"trailing dot", "example.com.", "example.com", "example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ascii, uni, err := NormalizeDomain(tt.in)
			if err != nil {
				t.Fatalf("NormalizeDomain(%q) error = %v", tt.in, err)
			}
			if ascii != tt.wantASCII || uni != tt.wantUn {
				t.Errorf("NormalizeDomain(%q) = %q, %q; want %q, %q", tt.in, ascii, uni, tt.wantASCII, tt.wantUn)
			}
		})
	}
}

func TestNormalizeDomainRefuses(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 63)+".", 4) + "com" // 259 octets
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"only a dot", "."},
		{"single label", "localhost"},
		{"numeric TLD", "example.123"},
		{"address literal", "[192.0.2.1]"},
		{"over-long label", strings.Repeat("a", 64) + ".com"},
		{"over-long name (RFC 1035: 253 octets in text form)", long},
		{"invalid punycode", "xn--a.example"},
		{"space", "exa mple.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ascii, _, err := NormalizeDomain(tt.in); err == nil {
				t.Errorf("NormalizeDomain(%q) = %q, want an error", tt.in, ascii)
			}
		})
	}
}

func TestDomainOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{"anna@example.com", "example.com"},
		{`"a@b"@example.com`, "example.com"},
	}
	for _, tt := range tests {
		if got := DomainOf(tt.in); got != tt.want {
			t.Errorf("DomainOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

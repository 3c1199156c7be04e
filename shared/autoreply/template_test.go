package autoreply

import (
	"github.com/mailroom/mailroom/internal/golden"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailroom/mailroom/shared/fault"
)

var (
	kl    = time.FixedZone("+08", 8*3600)
	kinds = []string{KindOutOfOffice, KindAcknowledgement, KindClosed, KindHolding}
	full  = Vars{
		SenderName:      "Ana Lima",
		SenderAddress:   "ana@gmail.com",
		OriginalSubject: "Invoice 2026-118",
		Recipient:       "support@example.com",
		Name:            "Example Support",
		Until:           time.Date(2026, 11, 24, 0, 0, 0, 0, kl),
		PromisedBy:      time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC), // 09:00 in Kuala Lumpur
		BusinessHours:   "Mon–Fri 09:00–18:00 Asia/Kuala_Lumpur",
		Successor:       "billing@example.com",
		Location:        kl,
	}
	// minimal has what every reply has, and nothing that may be unknown.
	minimal = Vars{SenderAddress: "ana@gmail.com", Recipient: "support@example.com"}
)

// TestDefaultsGolden renders every shipped template with every variable set, and with only
// those that are always known.
func TestDefaultsGolden(t *testing.T) {
	for _, kind := range kinds {
		for _, lang := range Languages() {
			tmpl, ok := Defaults(kind, lang)
			if !ok {
				t.Errorf("no default %s template in %s", kind, lang)
				continue
			}
			c, err := Parse(tmpl)
			if err != nil {
				t.Errorf("default %s template in %s: %v", kind, lang, err)
				continue
			}
			if c.Language() != lang {
				t.Errorf("Language() = %q, want %q", c.Language(), lang)
			}
			for name, v := range map[string]Vars{"": full, ".minimal": minimal} {
				subject, body, err := c.Render(v)
				if err != nil {
					t.Errorf("%s.%s%s: %v", kind, lang, name, err)
					continue
				}
				for _, bad := range []string{"<no value>", "{{", "<nil>", "0001"} {
					if strings.Contains(subject+body, bad) {
						t.Errorf("%s.%s%s renders %q:\n%s\n\n%s", kind, lang, name, bad, subject, body)
					}
				}
				golden.Check(t, kind+"."+lang+name, []byte("Subject: "+subject+"\n\n"+body))
			}
		}
	}
}

func TestDefaultsLookup(t *testing.T) {
	if _, ok := Defaults(KindOutOfOffice, "ZH-hant"); !ok {
		t.Error("language names are not case-sensitive")
	}
	for _, tt := range [][2]string{{KindOutOfOffice, "fr"}, {KindOutOfOffice, "zh-CN"}, {"holiday", "en"}, {"", ""}} {
		if _, ok := Defaults(tt[0], tt[1]); ok {
			t.Errorf("Defaults(%q, %q) found a template", tt[0], tt[1])
		}
	}
	l := Languages()
	l[0] = "xx"
	if Languages()[0] != "en" {
		t.Error("Languages returns the package's own slice")
	}
}

func TestParseRefuses(t *testing.T) {
	const ok = "Automatic reply: {{.OriginalSubject}}"
	const body = "Hello {{.SenderName}}"
	tests := []struct {
		name          string
		subject, body string
		language      string
		field         string
		want          string // in the message
	}{
		{"unknown field", ok, "{{.Password}}", "en", "body", ".Password is not a template field"},
		{"location", ok, "{{.Location}}", "en", "body", ".Location is not a template field"},
		{"method of a time", ok, "{{.Until.Year}}", "en", "body", "not a template field"},
		{"chain", ok, "{{(.Until).Year}}", "en", "body", "not allowed"},
		{"field of dot in with", ok, "{{with .Until}}{{.Format \"2006\"}}{{end}}", "en", "body", ".Format is not a template field"},
		{"unknown field of $", ok, "{{$.Secret}}", "en", "body", "not a template field"},
		{"dot", ok, "{{.}}", "en", "body", "{{.}} is only allowed inside {{with}}"},
		{"dot in else of with", ok, "{{with .Name}}{{.}}{{else}}{{.}}{{end}}", "en", "body", "only allowed inside {{with}}"},
		{"dollar", ok, "{{$}}", "en", "body", "$ is not a template field"},
		{"variable", ok, "{{$x := .Name}}{{$x}}", "en", "body", "variables are not allowed"},
		{"unknown function", ok, "{{exec \"rm\"}}", "en", "body", `function "exec" not defined`},
		{"printf", ok, `{{printf "%0999999999d" 1}}`, "en", "body", `function "printf" is not allowed`},
		{"call", ok, "{{call .Name}}", "en", "body", `function "call" is not allowed`},
		{"index", ok, "{{index .Name 0}}", "en", "body", `function "index" is not allowed`},
		{"range", ok, "{{range .Name}}x{{end}}", "en", "body", "range is not allowed"},
		{"define", ok, `{{define "x"}}y{{end}}` + body, "en", "body", "define and block are not allowed"},
		{"template", ok, `{{template "body"}}`, "en", "body", "template and block are not allowed"},
		{"syntax", ok, "{{.Name", "en", "body", "unclosed action"},
		{"date of a text", ok, "{{date .Name}}", "en", "body", "date takes .Until or .PromisedBy, not a string"},
		{"date of a text in else", ok, "{{if .Until}}{{date .Until}}{{else}}{{datetime .Name}}{{end}}", "en", "body", "datetime takes .Until or .PromisedBy, not a string"},
		{"subject field", "{{.Secret}}", body, "en", "subject", ".Secret is not a template field"},
		{"subject too long", strings.Repeat("x", 201), body, "en", "subject", "201 characters"},
		{"subject too long in Chinese", strings.Repeat("长", 190) + "{{.OriginalSubject}}", body, "zh-Hans", "subject", "206 characters"},
		{"subject source too long", strings.Repeat("{{/* */}}", 200), body, "en", "subject", "longer than 1024 bytes"},
		{"subject empty", "{{with .Successor}}{{end}}", body, "en", "subject", "renders empty"},
		{"body too long", ok, strings.Repeat("0123456789abcdef", 1025), "en", "body", "more than 16384 bytes"},
		{"body source too long", ok, strings.Repeat("{{/* */}}", 4000), "en", "body", "longer than 32768 bytes"},
		{"body empty", ok, "  {{if .Until}}{{end}}\n", "en", "body", "renders empty"},
		{"no language", ok, body, "", "language", "not a BCP 47 language tag"},
		{"bad language", ok, body, "english!", "language", "not a BCP 47 language tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(Template{Language: tt.language, Subject: tt.subject, Body: tt.body})
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
				t.Fatalf("Parse = %v, %v; want Invalid on %s", c, err, tt.field)
			}
			if !strings.Contains(fault.MessageOf(err), tt.want) {
				t.Errorf("message %q lacks %q", fault.MessageOf(err), tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tmpl := range []Template{
		{Language: "en-GB", Subject: "Away", Body: "Back {{if .Until}}on {{date .Until}}{{else}}soon{{end}}."},
		{Language: "ms", Subject: "{{.OriginalSubject}}", Body: `{{with .Successor}}{{.}} ({{$.Name}}{{if .}}{{.}}{{end}}){{end}}{{if and .Until (ne .Name "")}}!{{end}}x`},
		{Language: "fr", Subject: "Réponse automatique", Body: "{{/* a comment */}}De retour le {{date .Until}}, {{datetime .PromisedBy}}."},
	} {
		if _, err := Parse(tmpl); err != nil {
			t.Errorf("Parse(%+v): %v", tmpl, err)
		}
	}
}

func TestRender(t *testing.T) {
	c, err := Parse(Template{Language: "en", Subject: "Re: {{.OriginalSubject}}", Body: strings.Repeat("{{.OriginalSubject}}\n", 100)})
	if err != nil {
		t.Fatal(err)
	}
	v := full
	v.OriginalSubject = strings.Repeat("s", 300)
	if _, _, err := c.Render(v); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "body" {
		t.Errorf("a body over %d bytes: err = %v", MaxBody, err)
	}

	c, err = Parse(Template{Language: "zh-Hans", Subject: "自动回复：{{.OriginalSubject}}", Body: "{{.SenderName}}\n{{.OriginalSubject}}\r\nend\x00\x1b"})
	if err != nil {
		t.Fatal(err)
	}
	v = full
	v.OriginalSubject = strings.Repeat("报价单", 100)
	subject, _, err := c.Render(v)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(subject); n != MaxSubject || !strings.HasSuffix(subject, "…") {
		t.Errorf("long subject: %d characters %q", n, subject)
	}

	v.SenderName = "Eve\r\nBcc: victim@evil.test\u2028x"
	v.OriginalSubject = "a\nb\x00\u202e"
	subject, body, err := c.Render(v)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "自动回复：a b" {
		t.Errorf("subject = %q", subject)
	}
	if want := "Eve Bcc: victim@evil.test x\na b\nend\n"; body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func TestDates(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 5, 0, 0, time.UTC) // a Tuesday
	tests := []struct {
		lang       string
		loc        *time.Location
		date, time string
	}{
		{"en", nil, "Tuesday, 24 November 2026", "Tuesday, 24 November 2026, 09:05 (UTC)"},
		{"en-US", time.FixedZone("EST", -5*3600), "Tuesday, 24 November 2026", "Tuesday, 24 November 2026, 04:05 (UTC-5)"},
		{"zh-Hans", kl, "2026年11月24日（星期二）", "2026年11月24日（星期二）17:05（UTC+8）"},
		{"zh-Hant", kl, "2026年11月24日（星期二）", "2026年11月24日（星期二）17:05（UTC+8）"},
		{"ms", kl, "Selasa, 24 November 2026", "Selasa, 24 November 2026, 17:05 (UTC+8)"},
		{"vi", time.FixedZone("+07", 7*3600), "thứ Ba, ngày 24/11/2026", "16:05 thứ Ba, ngày 24/11/2026 (UTC+7)"},
		{"fr", time.FixedZone("IST", 5*3600+1800), "2026-11-24", "2026-11-24 14:35 (UTC+5:30)"},
		{"en", time.FixedZone("", 14*3600), "Tuesday, 24 November 2026", "Tuesday, 24 November 2026, 23:05 (UTC+14)"},
		{"zh-Hans", time.FixedZone("", -10*3600), "2026年11月23日（星期一）", "2026年11月23日（星期一）23:05（UTC-10）"},
	}
	for _, tt := range tests {
		c, err := Parse(Template{Language: tt.lang, Subject: "x", Body: "{{date .Until}}|{{datetime .PromisedBy}}"})
		if err != nil {
			t.Fatal(err)
		}
		_, body, err := c.Render(Vars{Until: at, PromisedBy: at, Location: tt.loc})
		if err != nil {
			t.Fatal(err)
		}
		if want := tt.date + "|" + tt.time + "\n"; body != want {
			t.Errorf("%s in %v: %q, want %q", tt.lang, tt.loc, body, want)
		}
	}
	// Unknown times are false in {{if}} and print nothing when a template forgets to ask.
	c, err := Parse(Template{Language: "en", Subject: "x", Body: "[{{if .Until}}known{{end}}{{date .Until}}{{datetime .PromisedBy}}]"})
	if err != nil {
		t.Fatal(err)
	}
	if _, body, _ := c.Render(Vars{}); body != "[]\n" {
		t.Errorf("zero times render %q", body)
	}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		setting, contentLanguage, charset string
		want                              string
	}{
		{"", "", "", "en"},
		{"zh-CN", "", "", "zh-Hans"},
		{"zh", "", "", "zh-Hans"},
		{"zh-SG", "", "", "zh-Hans"},
		{"zh-TW", "", "", "zh-Hant"},
		{"zh-HK", "", "", "zh-Hant"},
		{"zh-MO", "", "", "zh-Hant"},
		{"zh-Hant", "en", "", "zh-Hant"},
		{"ms-MY", "", "", "ms"},
		{"ms-BN", "", "", "ms"},
		{"vi-VN", "", "", "vi"},
		{"EN-gb", "vi", "", "en"},
		{"en", "zh-CN", "gb2312", "en"},
		// A setting no template is in gives way to the message.
		{"fr", "vi", "", "vi"},
		{"not a tag!", "ms", "", "ms"},
		{"", "zh-TW", "gb2312", "zh-Hant"},
		{"", "fr, zh-CN", "", "zh-Hans"},
		{"", " vi-VN ,en", "", "vi"},
		{"", "de", "", "en"},
		// Related is not the same: Cantonese, Indonesian, Malay in Jawi.
		{"", "yue", "", "en"},
		{"", "id", "", "en"},
		{"", "ms-Arab", "", "en"},
		{"", "", "GB2312", "zh-Hans"},
		{"", "", "gbk", "zh-Hans"},
		{"", "", `"gb18030"`, "zh-Hans"},
		{"", "", "Big5", "zh-Hant"},
		{"", "", "big5-hkscs", "zh-Hant"},
		{"", "", "windows-1258", "vi"},
		{"", "", "VISCII", "vi"},
		{"", "de", "big5", "zh-Hant"},
		{"", "", "utf-8", "en"},
		{"", "", "iso-8859-1", "en"},
	}
	for _, tt := range tests {
		if got := Choose(tt.setting, tt.contentLanguage, tt.charset); got != tt.want {
			t.Errorf("Choose(%q, %q, %q) = %q, want %q", tt.setting, tt.contentLanguage, tt.charset, got, tt.want)
		}
	}
}

// FuzzParse checks that no template, however odd, panics or renders past the bounds.
func FuzzParse(f *testing.F) {
	for _, kind := range kinds {
		for _, lang := range Languages() {
			tmpl, _ := Defaults(kind, lang)
			f.Add(tmpl.Subject, tmpl.Body, lang)
		}
	}
	f.Add("{{.}}", "{{with .Until}}{{.}}{{end}}{{$.Name}}", "en")
	f.Fuzz(func(t *testing.T, subject, body, lang string) {
		c, err := Parse(Template{Language: lang, Subject: subject, Body: body})
		if err != nil {
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("error of kind %v: %v", fault.KindOf(err), err)
			}
			return
		}
		v := full
		v.OriginalSubject = strings.Repeat("长", 300)
		s, b, err := c.Render(v)
		if err != nil {
			return
		}
		if utf8.RuneCountInString(s) > MaxSubject || strings.ContainsAny(s, "\r\n") || len(b) > MaxBody+1 {
			t.Errorf("rendered %d-character subject %q, %d-byte body", utf8.RuneCountInString(s), s, len(b))
		}
	})
}

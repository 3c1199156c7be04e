package autoreply

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/mailroom/mailroom/shared/fault"
)

// Vars are what a reply template may use, as {{.SenderName}}, {{date .Until}} and so on. Every
// text is made one line and bounded before it reaches a template.
type Vars struct {
	// SenderName is the original author's display name; Render uses SenderAddress when it is
	// empty.
	SenderName string
	// SenderAddress is the original author's address.
	SenderAddress string
	// OriginalSubject is the subject of the message being answered, decoded.
	OriginalSubject string
	// Recipient is the address of the mailbox or group that replies.
	Recipient string
	// Name is the mailbox's display name or the group's name; Render uses Recipient when it is
	// empty.
	Name string
	// Until is when the person is back (out-of-office); zero when unknown, and then false in
	// {{if .Until}}.
	Until time.Time
	// PromisedBy is when a reply is promised (acknowledgement); zero when none, and then false
	// in {{if .PromisedBy}}.
	PromisedBy time.Time
	// BusinessHours is when the team works, as the administrator wrote it:
	// "Mon–Fri 09:00–18:00 Asia/Kuala_Lumpur".
	BusinessHours string
	// Successor is who to write to instead of a closed mailbox; "" when nobody.
	Successor string
	// Location is the zone times are shown in: the sender's if known, else the mailbox's or the
	// group's. UTC when nil. Templates cannot read it; date and datetime use it.
	Location *time.Location
}

// view is what a template executes on: the documented Vars, times in the zone they are shown
// in, and nil instead of a zero time so that {{if .Until}} means "known".
type view struct {
	SenderName, SenderAddress, OriginalSubject, Recipient, Name string
	Until, PromisedBy                                           *time.Time
	BusinessHours, Successor                                    string
}

// fields are the names a template may use after a dot: view's fields.
var fields = map[string]bool{
	"SenderName": true, "SenderAddress": true, "OriginalSubject": true, "Recipient": true, "Name": true,
	"Until": true, "PromisedBy": true, "BusinessHours": true, "Successor": true,
}

// functions are the functions a template may call: ours, and text/template's comparisons and
// logic. printf, index, call and the rest are refused: nothing a template needs, and printf
// can make output of any size before a bound sees it.
var functions = map[string]bool{
	"date": true, "datetime": true,
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
}

// Template is one language's text of one kind of reply: Go text/template sources.
type Template struct {
	Language string `json:"language"` // BCP 47: "en", "zh-Hans", "ms"
	Subject  string `json:"subject"`
	Body     string `json:"body"`
}

// Bounds on templates and on what they render.
const (
	MaxSubject = 200      // characters of a rendered subject
	MaxBody    = 16 << 10 // bytes of a rendered body

	maxSubjectSource = 1 << 10
	maxBodySource    = 32 << 10
	// maxSubjectBytes stops a subject being rendered at all past what MaxSubject can keep.
	maxSubjectBytes = MaxSubject * utf8.UTFMax
)

// Bounds on the texts a template is given.
const (
	maxName    = 100
	maxAddress = 254
	maxText    = 200
)

// supported are the languages of the shipped templates, in the order Languages lists them.
// English comes first: it is what a message in no supported language gets.
var supported = []language.Tag{
	language.English, language.SimplifiedChinese, language.TraditionalChinese, language.Malay, language.Vietnamese,
}

var names = []string{"en", "zh-Hans", "zh-Hant", "ms", "vi"}

var matcher = language.NewMatcher(supported)

// maxTags bounds the tags of a Content-Language list that Choose reads.
const maxTags = 8

// Languages returns the languages of the shipped templates.
func Languages() []string {
	return append([]string(nil), names...)
}

//go:embed templates/*.tmpl
var shipped embed.FS

// defaults holds the shipped templates by kind and language, read once from templates/: each
// file, <kind>.<language>.tmpl, is the subject on its first line, a blank line, then the body.
var defaults = func() map[string]Template {
	m := make(map[string]Template)
	entries, err := shipped.ReadDir("templates")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := shipped.ReadFile("templates/" + e.Name())
		if err != nil {
			panic(err)
		}
		key := strings.TrimSuffix(e.Name(), ".tmpl")
		dot := strings.LastIndexByte(key, '.')
		subject, body, ok := strings.Cut(string(b), "\n\n")
		if dot < 0 || !ok || strings.Contains(subject, "\n") {
			panic("autoreply: templates/" + e.Name() + " is not <kind>.<language>.tmpl with a subject line, a blank line and a body")
		}
		m[key] = Template{Language: key[dot+1:], Subject: subject, Body: body}
	}
	return m
}()

// Defaults returns the shipped template of a kind in a language: en, zh-Hans, zh-Hant, ms or vi
// (Choose returns one of them).
func Defaults(kind, lang string) (Template, bool) {
	for _, n := range names {
		if strings.EqualFold(n, lang) {
			t, ok := defaults[kind+"."+n]
			return t, ok
		}
	}
	return Template{}, false
}

// Choose picks the language of a reply: the mailbox's or group's setting when it is set and
// supported, else the original message's Content-Language, else its charset when that says
// which language it is, else English. Tags are BCP 47 and matched, not compared: "zh-CN" is
// zh-Hans, "zh-TW" and "zh-HK" are zh-Hant, "ms-MY" is ms, "en-GB" is en.
func Choose(setting, contentLanguage, charset string) string {
	if n, ok := match(setting); ok {
		return n
	}
	if n, ok := messageLanguage(contentLanguage, charset); ok {
		return n
	}
	return "en"
}

// messageLanguage is the supported language a message is in, when its Content-Language or its
// charset makes that clear.
func messageLanguage(contentLanguage, charset string) (string, bool) {
	if n, ok := match(contentLanguage); ok {
		return n, true
	}
	switch strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"`)) {
	case "gb2312", "gbk", "gb18030", "x-gbk", "cp936", "euc-cn", "hz-gb-2312":
		return "zh-Hans", true
	case "big5", "big5-hkscs", "x-big5", "cp950":
		return "zh-Hant", true
	case "windows-1258", "cp1258", "viscii", "tcvn", "tcvn-5712", "x-viet-tcvn5712":
		return "vi", true
	}
	return "", false
}

// match reads list, one BCP 47 tag or a Content-Language list of them ("en, zh-CN"), and
// returns the supported language that fits it, if one fits well: a language matched only by
// being related (Cantonese to Traditional Chinese, Malay in Arabic script to Malay) does not.
func match(list string) (string, bool) {
	var tags []language.Tag
	for i, s := range strings.Split(list, ",") {
		if i == maxTags {
			break
		}
		if t, err := language.Parse(strings.TrimSpace(s)); err == nil && t != language.Und {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		return "", false
	}
	_, i, conf := matcher.Match(tags...)
	if conf < language.High {
		return "", false
	}
	return names[i], true
}

// Compiled is a checked template, ready to render. It is safe for concurrent use.
type Compiled struct {
	language      string
	subject, body *template.Template
}

// Language is the language of the compiled template, for the reply's Content-Language.
func (c *Compiled) Language() string { return c.language }

// Parse checks a template (a shipped one, or one an administrator or an employee wrote) and
// returns it ready to render. A template may use the fields of Vars but Location, if/else/with,
// comparisons, and date and datetime ({{date .Until}}, {{datetime .PromisedBy}}), which write a
// time in the template's language; nothing else. The subject must render to one line of at
// most MaxSubject characters and the body to at most MaxBody bytes. Errors are fault.Invalid,
// naming "language", "subject" or "body".
func Parse(t Template) (*Compiled, error) {
	const op = "autoreply.Parse"
	tag, err := language.Parse(strings.TrimSpace(t.Language))
	if err != nil || tag == language.Und {
		return nil, fault.InvalidField(op, "language", "%q is not a BCP 47 language tag", t.Language)
	}
	c := &Compiled{language: tag.String()}
	format := formats[""]
	if n, ok := match(c.language); ok {
		format = formats[n]
	}
	if len(t.Subject) > maxSubjectSource {
		return nil, fault.InvalidField(op, "subject", "the template is longer than %d bytes", maxSubjectSource)
	}
	if len(t.Body) > maxBodySource {
		return nil, fault.InvalidField(op, "body", "the template is longer than %d bytes", maxBodySource)
	}
	if c.subject, err = compile("subject", t.Subject, format); err != nil {
		return nil, fault.InvalidField(op, "subject", "%v", err)
	}
	if c.body, err = compile("body", t.Body, format); err != nil {
		return nil, fault.InvalidField(op, "body", "%v", err)
	}

	// Errors that only execution finds (a date of a text, a field of a time) show on one of the
	// two sides of every {{if}}: try both.
	for i, v := range []Vars{sample, {}} {
		subject, body, err := c.execute(op, v)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			continue
		}
		if subject == "" {
			return nil, fault.InvalidField(op, "subject", "the subject renders empty")
		}
		if n := utf8.RuneCountInString(subject); n > MaxSubject {
			return nil, fault.InvalidField(op, "subject", "the subject renders to %d characters; at most %d fit", n, MaxSubject)
		}
		if strings.TrimSpace(body) == "" {
			return nil, fault.InvalidField(op, "body", "the body renders empty")
		}
	}
	return c, nil
}

// sample is what Parse renders a template with to find what only execution finds.
var sample = Vars{
	SenderName: "Ana Lima", SenderAddress: "ana@example.net", OriginalSubject: "Invoice 2026-118",
	Recipient: "support@example.com", Name: "Example Support",
	Until:         time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC),
	PromisedBy:    time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC),
	BusinessHours: "Mon–Fri 09:00–18:00", Successor: "billing@example.com",
}

func compile(name, src string, f dateFormat) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"date":     f.date,
		"datetime": f.datetime,
	}).Parse(src)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("define and block are not allowed")
	}
	if t.Tree == nil || t.Root == nil {
		return t, nil
	}
	return t, check(t.Root, false)
}

// check walks a parsed template and refuses anything but the documented fields, the allowed
// functions, and if, else and with. Dot alone is a with's value; elsewhere it is all the
// fields at once, and printing them is no use to anyone.
func check(n parse.Node, inWith bool) error {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := check(c, inWith); err != nil {
				return err
			}
		}
	case *parse.TextNode, *parse.CommentNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode:
	case *parse.DotNode:
		if !inWith {
			return errors.New("{{.}} is only allowed inside {{with}}; use a field such as .SenderName")
		}
	case *parse.ActionNode:
		return check(n.Pipe, inWith)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		if len(n.Decl) > 0 {
			return fmt.Errorf("%s: variables are not allowed", n)
		}
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				if err := check(a, inWith); err != nil {
					return err
				}
			}
		}
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, inWith, inWith)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, true, inWith)
	case *parse.FieldNode:
		if len(n.Ident) != 1 || !fields[n.Ident[0]] {
			return fmt.Errorf("%s is not a template field; use %s", n, fieldList())
		}
	case *parse.VariableNode:
		// $ is the top of the data, as in {{with .Successor}}{{$.Name}}{{end}}.
		if len(n.Ident) != 2 || n.Ident[0] != "$" || !fields[n.Ident[1]] {
			return fmt.Errorf("%s is not a template field; use %s", n, fieldList())
		}
	case *parse.IdentifierNode:
		if !functions[n.Ident] {
			return fmt.Errorf("function %q is not allowed; use date, datetime, and, or, not, eq, ne, lt, le, gt or ge", n.Ident)
		}
	case *parse.RangeNode:
		return errors.New("range is not allowed")
	case *parse.TemplateNode:
		return errors.New("template and block are not allowed")
	default:
		return fmt.Errorf("%s is not allowed", n)
	}
	return nil
}

// checkBranch checks an if or a with: inList is whether dot is a with's value in its list.
func checkBranch(b *parse.BranchNode, inList, inElse bool) error {
	if err := check(b.Pipe, inElse); err != nil {
		return err
	}
	if err := check(b.List, inList); err != nil {
		return err
	}
	return check(b.ElseList, inElse)
}

func fieldList() string {
	return ".SenderName, .SenderAddress, .OriginalSubject, .Recipient, .Name, .Until, .PromisedBy, .BusinessHours or .Successor"
}

// Render writes the reply's subject, one line of at most MaxSubject characters (a longer one is
// cut: the original subject in it can be long), and its body, with LF line ends. An error is
// fault.Invalid: the body rendered longer than MaxBody, or the template failed on these Vars.
func (c *Compiled) Render(v Vars) (subject, body string, err error) {
	subject, body, err = c.execute("autoreply.Render", v)
	return truncate(subject, MaxSubject), body, err
}

// execute renders the subject, made one line but not cut, and the body.
func (c *Compiled) execute(op string, v Vars) (string, string, error) {
	d := prepare(v)
	s := limited{max: maxSubjectBytes, quiet: true}
	if err := c.subject.Execute(&s, d); err != nil {
		return "", "", fault.InvalidField(op, "subject", "%v", err)
	}
	b := limited{max: MaxBody}
	if err := c.body.Execute(&b, d); err != nil {
		if errors.Is(err, errTooLong) {
			return "", "", fault.InvalidField(op, "body", "the body renders to more than %d bytes", MaxBody)
		}
		return "", "", fault.InvalidField(op, "body", "%v", err)
	}
	return oneLine(s.String()), text(b.String()), nil
}

// prepare makes the view a template executes on.
func prepare(v Vars) view {
	loc := v.Location
	if loc == nil {
		loc = time.UTC
	}
	d := view{
		SenderName:      truncate(oneLine(v.SenderName), maxName),
		SenderAddress:   truncate(oneLine(v.SenderAddress), maxAddress),
		OriginalSubject: truncate(oneLine(v.OriginalSubject), maxText),
		Recipient:       truncate(oneLine(v.Recipient), maxAddress),
		Name:            truncate(oneLine(v.Name), maxName),
		BusinessHours:   truncate(oneLine(v.BusinessHours), maxText),
		Successor:       truncate(oneLine(v.Successor), maxAddress),
	}
	if d.SenderName == "" {
		d.SenderName = d.SenderAddress
	}
	if d.Name == "" {
		d.Name = d.Recipient
	}
	if !v.Until.IsZero() {
		t := v.Until.In(loc)
		d.Until = &t
	}
	if !v.PromisedBy.IsZero() {
		t := v.PromisedBy.In(loc)
		d.PromisedBy = &t
	}
	return d
}

var errTooLong = errors.New("output too long")

// limited is a buffer that takes at most max bytes: past that it fails the write, which stops
// the template, or when quiet drops what does not fit.
type limited struct {
	bytes.Buffer
	max   int
	quiet bool
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); len(p) > room {
		if !l.quiet {
			return 0, errTooLong
		}
		l.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return l.Buffer.Write(p)
}

// oneLine makes s one line of text: invalid UTF-8 becomes U+FFFD, controls and line breaks
// spaces, runs of spaces one, no space at either end. Bidirectional overrides, which can make a
// name read as something else, are dropped.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' || r == '\u200e' || r == '\u200f' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}), " ")
}

// text makes a rendered body plain text: valid UTF-8, LF line ends, no controls but tabs, no
// space at the end of a line, one line end at the end.
func text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\r' || r == '\u2028' || r == '\u2029':
			return '\n'
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(l, unicode.IsSpace)
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
}

// truncate shortens s to at most n characters, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// dateFormat writes dates and times as people reading one language expect them.
type dateFormat struct {
	months   [12]string
	weekdays [7]string // Sunday first
	// day formats a date from the year, month name, day of the month and weekday name.
	day func(year int, month string, d int, weekday string) string
	// at joins a day (from day) and a clock time ("09:00") and zone ("UTC+8").
	at func(day, clock, zone string) string
}

func (f dateFormat) date(v any) (string, error) {
	t, err := when("date", v)
	if t == nil {
		return "", err
	}
	return f.day(t.Year(), f.months[t.Month()-1], t.Day(), f.weekdays[t.Weekday()]), nil
}

func (f dateFormat) datetime(v any) (string, error) {
	t, err := when("datetime", v)
	if t == nil {
		return "", err
	}
	day, _ := f.date(t)
	return f.at(day, t.Format("15:04"), zone(*t)), nil
}

// when is the time date or datetime was given: nil when it is unknown.
func when(name string, v any) (*time.Time, error) {
	switch v := v.(type) {
	case *time.Time:
		return v, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("%s takes .Until or .PromisedBy, not a %T", name, v)
}

// zone is t's offset from UTC as anyone reads it, whatever the zone's abbreviation:
// "UTC", "UTC+8", "UTC+5:30", "UTC-3".
func zone(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "UTC"
	}
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	z := fmt.Sprintf("UTC%s%d", sign, off/3600)
	if m := off % 3600 / 60; m != 0 {
		z += fmt.Sprintf(":%02d", m)
	}
	return z
}

var chineseFormat = dateFormat{
	months:   [12]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"},
	weekdays: [7]string{"星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"},
	day: func(y int, m string, d int, w string) string {
		return fmt.Sprintf("%d年%s月%d日（%s）", y, m, d, w)
	},
	at: func(day, clock, zone string) string { return day + clock + "（" + zone + "）" },
}

// formats are by supported language; "" is for a custom template in another language: ISO 8601
// dates, which read the same in every language.
var formats = map[string]dateFormat{
	"en": {
		months:   [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		weekdays: [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		day: func(y int, m string, d int, w string) string {
			return fmt.Sprintf("%s, %d %s %d", w, d, m, y)
		},
		at: func(day, clock, zone string) string { return day + ", " + clock + " (" + zone + ")" },
	},
	"zh-Hans": chineseFormat,
	"zh-Hant": chineseFormat,
	"ms": {
		months:   [12]string{"Januari", "Februari", "Mac", "April", "Mei", "Jun", "Julai", "Ogos", "September", "Oktober", "November", "Disember"},
		weekdays: [7]string{"Ahad", "Isnin", "Selasa", "Rabu", "Khamis", "Jumaat", "Sabtu"},
		day: func(y int, m string, d int, w string) string {
			return fmt.Sprintf("%s, %d %s %d", w, d, m, y)
		},
		at: func(day, clock, zone string) string { return day + ", " + clock + " (" + zone + ")" },
	},
	// Vietnamese writes the time before the date: "09:00 thứ Ba, ngày 24/11/2026".
	"vi": {
		months:   [12]string{"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"},
		weekdays: [7]string{"Chủ nhật", "thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy"},
		day: func(y int, m string, d int, w string) string {
			return fmt.Sprintf("%s, ngày %02d/%s/%d", w, d, m, y)
		},
		at: func(day, clock, zone string) string { return clock + " " + day + " (" + zone + ")" },
	},
	"": {
		months: [12]string{"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"},
		day: func(y int, m string, d int, _ string) string {
			return fmt.Sprintf("%04d-%s-%02d", y, m, d)
		},
		at: func(day, clock, zone string) string { return day + " " + clock + " (" + zone + ")" },
	},
}

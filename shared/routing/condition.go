package routing

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/mail"
)

// Condition types.
const (
	ConditionSender         = "sender"
	ConditionSenderDomain   = "senderDomain"
	ConditionRecipient      = "recipient"
	ConditionSubject        = "subject"
	ConditionHeader         = "header"
	ConditionHasAttachment  = "hasAttachment"
	ConditionAttachmentType = "attachmentType"
	ConditionSize           = "size"
	ConditionVerdict        = "verdict"
	ConditionSenderKind     = "senderKind"
	ConditionTime           = "time"
)

// Values of a senderKind condition.
const (
	SenderInternal = "internal"
	SenderExternal = "external"
)

// Checks a verdict condition can look at: the fields of Verdicts.
var verdictChecks = []string{"spam", "virus", "spf", "dkim", "dmarc"}

var verdictStatuses = []string{VerdictPass, VerdictFail, VerdictGray, VerdictProcessingFailed, VerdictDisabled}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// conditionFields are the JSON members each condition type has besides "type".
var conditionFields = map[string][]string{
	ConditionSender:         {"pattern"},
	ConditionSenderDomain:   {"pattern"},
	ConditionRecipient:      {"pattern"},
	ConditionSubject:        {"pattern"},
	ConditionHeader:         {"name", "pattern"},
	ConditionHasAttachment:  {"value"},
	ConditionAttachmentType: {"pattern"},
	ConditionSize:           {"min", "max"},
	ConditionVerdict:        {"check", "status"},
	ConditionSenderKind:     {"value"},
	ConditionTime:           {"timeZone", "days", "from", "to"},
}

var conditionTypes = []string{ConditionSender, ConditionSenderDomain, ConditionRecipient, ConditionSubject,
	ConditionHeader, ConditionHasAttachment, ConditionAttachmentType, ConditionSize, ConditionVerdict,
	ConditionSenderKind, ConditionTime}

// Condition is one test of a rule, a tagged object {"type": ..., ...} in JSON. Each type uses
// only its own fields; the others must be left empty.
type Condition struct {
	Type string
	// Pattern is a glob for sender, senderDomain, recipient and attachmentType (a content type
	// such as "image/*", or a file name extension such as ".exe"), and an RE2 regular
	// expression for subject and header.
	Pattern string
	// Name is a header condition's field name.
	Name string
	// Value is a senderKind condition's SenderInternal or SenderExternal.
	Value string
	// HasAttachment is a hasAttachment condition's value: whether the message must have one.
	HasAttachment bool
	// Min and Max bound a size condition, in bytes, both inclusive; at least one is set.
	Min, Max *int64
	// Check (spam, virus, spf, dkim, dmarc) and Status (PASS, FAIL, ...) make a verdict condition.
	Check, Status string
	// TimeZone (IANA), Days ("mon".."sun"; none is every day), From and To ("HH:MM"; To may be
	// "24:00") make a time window. A window whose To is before its From spans midnight and
	// belongs to the day it starts on.
	TimeZone string
	Days     []string
	From, To string
}

// conditionJSON is a condition's wire form; Value is a string or, for hasAttachment, a bool.
type conditionJSON struct {
	Type     string   `json:"type"`
	Pattern  string   `json:"pattern,omitempty"`
	Name     string   `json:"name,omitempty"`
	Value    any      `json:"value,omitempty"`
	Min      *int64   `json:"min,omitempty"`
	Max      *int64   `json:"max,omitempty"`
	Check    string   `json:"check,omitempty"`
	Status   string   `json:"status,omitempty"`
	TimeZone string   `json:"timeZone,omitempty"`
	Days     []string `json:"days,omitempty"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
}

// MarshalJSON writes the condition as a tagged object.
func (c Condition) MarshalJSON() ([]byte, error) {
	w := conditionJSON{Type: c.Type, Pattern: c.Pattern, Name: c.Name, Min: c.Min, Max: c.Max,
		Check: c.Check, Status: c.Status, TimeZone: c.TimeZone, Days: c.Days, From: c.From, To: c.To}
	switch {
	case c.Type == ConditionHasAttachment:
		w.Value = c.HasAttachment
	case c.Value != "":
		w.Value = c.Value
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a tagged object strictly: the type must be known and every other member
// must be one of that type's fields. Errors are fault.Invalid and name the member at fault;
// DecodeRule adds the path of the condition.
func (c *Condition) UnmarshalJSON(data []byte) error {
	typ, members, err := decodeTagged(data, "condition", conditionTypes, conditionFields)
	if err != nil {
		return err
	}
	out := Condition{Type: typ}
	for _, key := range slices.Sorted(maps.Keys(members)) {
		raw := members[key]
		var err error
		switch key {
		case "pattern":
			err = decodeMember(key, raw, &out.Pattern)
		case "name":
			err = decodeMember(key, raw, &out.Name)
		case "value":
			if typ == ConditionHasAttachment {
				err = decodeMember(key, raw, &out.HasAttachment)
			} else {
				err = decodeMember(key, raw, &out.Value)
			}
		case "min":
			out.Min = new(int64)
			err = decodeMember(key, raw, out.Min)
		case "max":
			out.Max = new(int64)
			err = decodeMember(key, raw, out.Max)
		case "check":
			err = decodeMember(key, raw, &out.Check)
		case "status":
			err = decodeMember(key, raw, &out.Status)
		case "timeZone":
			err = decodeMember(key, raw, &out.TimeZone)
		case "days":
			err = decodeMember(key, raw, &out.Days)
		case "from":
			err = decodeMember(key, raw, &out.From)
		case "to":
			err = decodeMember(key, raw, &out.To)
		}
		if err != nil {
			return err
		}
	}
	if _, ok := members["value"]; !ok && typ == ConditionHasAttachment {
		// In Go false is the zero value; in JSON an absent value is more likely a mistake.
		return invalidMember("value", "is required: true (has an attachment) or false (has none)")
	}
	*c = out
	return nil
}

// usedFields are the JSON names of the fields c sets.
func (c Condition) usedFields() []string {
	var used []string
	add := func(set bool, name string) {
		if set {
			used = append(used, name)
		}
	}
	add(c.Pattern != "", "pattern")
	add(c.Name != "", "name")
	add(c.Value != "" || c.HasAttachment, "value")
	add(c.Min != nil, "min")
	add(c.Max != nil, "max")
	add(c.Check != "", "check")
	add(c.Status != "", "status")
	add(c.TimeZone != "", "timeZone")
	add(len(c.Days) > 0, "days")
	add(c.From != "", "from")
	add(c.To != "", "to")
	return used
}

// normalizeCondition checks one condition and returns it normalised; at is the field path of
// the condition ("when.0.").
func normalizeCondition(ck ruleChecker, at string, c Condition) (Condition, error) {
	fields, ok := conditionFields[c.Type]
	if !ok {
		if c.Type == "" {
			return c, ck.bad(at+"type", "is required: one of %s", strings.Join(conditionTypes, ", "))
		}
		return c, ck.bad(at+"type", "%q is not a condition type; one of %s", c.Type, strings.Join(conditionTypes, ", "))
	}
	for _, f := range c.usedFields() {
		if !slices.Contains(fields, f) {
			return c, ck.bad(at+f, "%s %s condition has no %s (it has %s)", aOrAn(c.Type), c.Type, f, strings.Join(fields, ", "))
		}
	}
	// Value and HasAttachment are both "value" in JSON; each type has only one of them.
	switch {
	case c.Type == ConditionHasAttachment && c.Value != "":
		return c, ck.bad(at+"value", "a hasAttachment condition's value is true or false (HasAttachment), not %q", c.Value)
	case c.Type != ConditionHasAttachment && c.HasAttachment:
		return c, ck.bad(at+"value", "%s %s condition has no true or false value", aOrAn(c.Type), c.Type)
	}
	var err error
	switch c.Type {
	case ConditionSender, ConditionRecipient:
		c.Pattern, err = addressGlob(c.Pattern)
	case ConditionSenderDomain:
		c.Pattern, err = domainGlob(c.Pattern)
	case ConditionSubject:
		err = checkRegexp(c.Pattern)
	case ConditionHeader:
		if err := checkFieldName(c.Name); err != nil {
			return c, ck.bad(at+"name", "%v", err)
		}
		if c.Pattern != "" {
			err = checkRegexp(c.Pattern)
		}
	case ConditionAttachmentType:
		c.Pattern, err = attachmentGlob(c.Pattern)
	case ConditionHasAttachment:
	case ConditionSize:
		return c, checkSize(ck, at, c)
	case ConditionVerdict:
		return normalizeVerdict(ck, at, c)
	case ConditionSenderKind:
		c.Value = strings.ToLower(c.Value)
		if c.Value != SenderInternal && c.Value != SenderExternal {
			return c, ck.bad(at+"value", "must be %q or %q", SenderInternal, SenderExternal)
		}
	case ConditionTime:
		return normalizeTime(ck, at, c)
	}
	if err != nil {
		return c, ck.bad(at+"pattern", "%v", err)
	}
	return c, nil
}

// addressGlob checks a glob on addresses, whose domains are in ASCII form.
func addressGlob(p string) (string, error) {
	p, err := parseGlob(strings.TrimSpace(p))
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(p, " \t") {
		return "", fmt.Errorf("%q can never match: addresses have no spaces", p)
	}
	at := strings.LastIndexByte(p, '@')
	if at < 0 {
		if !strings.Contains(p, "*") {
			return "", fmt.Errorf("%q can never match: it has no @ (for a whole domain write \"*@%s\" or use a senderDomain condition)", p, p)
		}
		return p, nil
	}
	domain, err := asciiDomainGlob(p[at+1:])
	if err != nil {
		return "", err
	}
	return p[:at+1] + domain, nil
}

// domainGlob checks a glob on domain names: "example.com" matches only that domain,
// "*.example.com" only its subdomains.
func domainGlob(p string) (string, error) {
	p, err := parseGlob(strings.TrimSuffix(strings.TrimSpace(p), "."))
	if err != nil {
		return "", err
	}
	switch {
	case strings.Contains(p, "@"):
		return "", fmt.Errorf("%q has an @: a domain pattern is the part after it (use a sender condition for addresses)", p)
	case strings.ContainsAny(p, " \t"):
		return "", fmt.Errorf("%q can never match: domain names have no spaces", p)
	case strings.HasPrefix(p, "."):
		return "", fmt.Errorf("%q can never match: domain names do not start with a dot (for subdomains write \"*%s\")", p, p)
	}
	return asciiDomainGlob(p)
}

// asciiDomainGlob turns the internationalised labels of a domain glob into their ASCII form,
// the form directory.NormalizeAddress gives addresses (and Facts give recipients).
func asciiDomainGlob(p string) (string, error) {
	labels := strings.Split(p, ".")
	for i, l := range labels {
		if isASCII(l) {
			continue
		}
		if globHasWildcard(l) {
			return "", fmt.Errorf("the label %q mixes wildcards with non-ASCII letters; write it in its xn-- form", l)
		}
		a, err := idna.Lookup.ToASCII(l)
		if err != nil {
			return "", fmt.Errorf("the label %q is not a valid domain label: %v", l, err)
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// attachmentGlob checks a glob on an attachment's content type ("image/*") or, starting with a
// dot, on its file name's extension (".exe", ".tar.gz").
func attachmentGlob(p string) (string, error) {
	p, err := parseGlob(strings.TrimSpace(p))
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(p, ".") {
		if strings.ContainsAny(p, "/") {
			return "", fmt.Errorf("%q can never match: an extension has no /", p)
		}
		if p == "." || strings.HasSuffix(p, ".") {
			return "", fmt.Errorf("%q can never match: an extension does not end with a dot", p)
		}
		return p, nil
	}
	typ, sub, ok := strings.Cut(p, "/")
	if !ok || typ == "" || sub == "" || strings.Contains(sub, "/") || strings.ContainsAny(p, " \t;") {
		return "", fmt.Errorf("%q is neither a content type such as \"application/pdf\" or \"image/*\" nor an extension such as \".exe\"", p)
	}
	return p, nil
}

// maxRegexpSize caps a regular expression's compiled program: matching costs time in proportion
// to it for every subject and header evaluated.
const maxRegexpSize = 5000

// checkRegexp accepts an RE2 regular expression (as regexp.Compile reads it) that can match
// something and is not too costly to run.
func checkRegexp(p string) error {
	if p == "" {
		return fmt.Errorf("is required (a regular expression)")
	}
	if err := checkPatternText(p); err != nil {
		return err
	}
	parsed, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		if se, ok := errors.AsType[*syntax.Error](err); ok {
			return fmt.Errorf("is not a valid regular expression: %s: `%s`", se.Code, se.Expr)
		}
		return fmt.Errorf("is not a valid regular expression: %v", err)
	}
	simple := parsed.Simplify()
	if neverMatches(simple) {
		return fmt.Errorf("can never match anything")
	}
	prog, err := syntax.Compile(simple)
	if err != nil {
		return fmt.Errorf("is not a valid regular expression: %v", err)
	}
	if len(prog.Inst) > maxRegexpSize {
		return fmt.Errorf("is too complex (%d steps compiled; at most %d): simplify it or split it into several rules", len(prog.Inst), maxRegexpSize)
	}
	return nil
}

// neverMatches reports whether a regular expression is built so that no text can match it, such
// as an empty character class: a rule with it would silently never apply.
func neverMatches(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpNoMatch:
		return true
	case syntax.OpCharClass:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return neverMatches(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min > 0 && neverMatches(re.Sub[0])
	case syntax.OpConcat:
		return slices.ContainsFunc(re.Sub, neverMatches)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !neverMatches(sub) {
				return false
			}
		}
		return true
	}
	return false
}

// maxFieldName keeps a header name and its colon within one 78-character line.
const maxFieldName = 76

// checkFieldName accepts an RFC 5322 field name: printable ASCII other than the colon.
func checkFieldName(name string) error {
	if name == "" {
		return fmt.Errorf("is required (a header field name)")
	}
	if len(name) > maxFieldName {
		return fmt.Errorf("is longer than %d characters", maxFieldName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("%q is not a header field name: only printable ASCII without spaces or colons", name)
		}
	}
	return nil
}

func checkSize(ck ruleChecker, at string, c Condition) error {
	switch {
	case c.Min == nil && c.Max == nil:
		return ck.bad(at+"min", "a size condition needs min, max or both (bytes)")
	case c.Min != nil && *c.Min < 0:
		return ck.bad(at+"min", "must not be negative")
	case c.Max != nil && *c.Max < 1:
		return ck.bad(at+"max", "must be at least 1: no message is smaller")
	case c.Min != nil && c.Max != nil && *c.Min > *c.Max:
		return ck.bad(at+"max", "is less than min (%d): no message could match", *c.Min)
	}
	return nil
}

func normalizeVerdict(ck ruleChecker, at string, c Condition) (Condition, error) {
	c.Check = strings.ToLower(c.Check)
	if !slices.Contains(verdictChecks, c.Check) {
		return c, ck.bad(at+"check", "must be one of %s", strings.Join(verdictChecks, ", "))
	}
	c.Status = strings.ToUpper(c.Status)
	if !slices.Contains(verdictStatuses, c.Status) {
		return c, ck.bad(at+"status", "must be one of %s", strings.Join(verdictStatuses, ", "))
	}
	return c, nil
}

func normalizeTime(ck ruleChecker, at string, c Condition) (Condition, error) {
	if c.TimeZone == "" {
		return c, ck.bad(at+"timeZone", "is required (an IANA time zone such as \"Europe/London\")")
	}
	if _, err := calendar.LoadZone(c.TimeZone); err != nil || c.TimeZone == "Local" {
		return c, ck.bad(at+"timeZone", "%q is not an IANA time zone", c.TimeZone)
	}
	if len(c.Days) > 0 {
		var seen [7]bool
		for i, d := range c.Days {
			n := slices.Index(weekdays, strings.ToLower(strings.TrimSpace(d)))
			if n < 0 {
				return c, ck.bad(fmt.Sprintf("%sdays.%d", at, i), "%q is not a day; one of %s", d, strings.Join(weekdays, ", "))
			}
			if seen[n] {
				return c, ck.bad(fmt.Sprintf("%sdays.%d", at, i), "%s is listed twice", weekdays[n])
			}
			seen[n] = true
		}
		// Week order reads best in the trace and compares equal however it was written.
		c.Days = nil
		for n, ok := range seen {
			if ok {
				c.Days = append(c.Days, weekdays[n])
			}
		}
	}
	from, to := -1, -1
	if c.From != "" {
		m, err := parseClock(c.From, false)
		if err != nil {
			return c, ck.bad(at+"from", "%v", err)
		}
		from = m
	}
	if c.To != "" {
		m, err := parseClock(c.To, true)
		if err != nil {
			return c, ck.bad(at+"to", "%v", err)
		}
		to = m
	}
	wholeDay := from <= 0 && (to < 0 || to == minutesPerDay)
	switch {
	case from >= 0 && from == to:
		return c, ck.bad(at+"to", "is the same as from: leave both out for the whole day")
	case from < 0 && to == 0:
		return c, ck.bad(at+"to", "until 00:00 is never: write the end of the window")
	case wholeDay && (len(c.Days) == 0 || len(c.Days) == 7):
		return c, ck.bad(at+"days", "a time condition needs days, from or to that leave some time out: as it is, it holds at every moment")
	}
	return c, nil
}

const minutesPerDay = 24 * 60

// parseClock reads "HH:MM" (24-hour) as minutes after midnight; "24:00" only as an end.
func parseClock(s string, end bool) (int, error) {
	bad := fmt.Errorf("%q is not a time of day: write HH:MM, 24-hour, such as \"09:00\" or \"17:30\"", s)
	if len(s) != 5 || s[2] != ':' {
		return 0, bad
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[3] == '+' || s[0] == '-' || s[3] == '-' || m > 59 || h > 24 {
		return 0, bad
	}
	if h == 24 {
		if !end || m != 0 {
			return 0, fmt.Errorf("%q is past the end of the day: 24:00 is the latest, and only for to", s)
		}
	}
	return h*60 + m, nil
}

// condTest is a compiled condition: one of the *...Test types below, each with a method
//
//	test(f *Facts) (holds bool, why string)
//
// that says whether the condition holds for f, and why in words for the trace.
type condTest any

// runTest calls t's test method. It names each type instead of calling through an interface:
// escape analysis cannot see through an interface call, and would move the Facts of every
// evaluation to the heap.
func runTest(t condTest, f *Facts) (bool, string) {
	switch t := t.(type) {
	case *globTest:
		return t.test(f)
	case *subjectTest:
		return t.test(f)
	case *headerTest:
		return t.test(f)
	case *hasAttachmentTest:
		return t.test(f)
	case *attachmentTest:
		return t.test(f)
	case *sizeTest:
		return t.test(f)
	case *verdictTest:
		return t.test(f)
	case *senderKindTest:
		return t.test(f)
	case *timeTest:
		return t.test(f)
	}
	panic(fmt.Sprintf("routing: condition test %T has no case in runTest", t))
}

// compileCondition builds the test of a normalised condition. Everything that does not depend
// on the message, the trace's words included, is worked out here, once per rule set.
func compileCondition(c Condition, unless bool) (condTest, error) {
	pre := ""
	if unless {
		pre = "unless: "
	}
	pat := traceQuote(c.Pattern)
	switch c.Type {
	case ConditionSender, ConditionSenderDomain, ConditionRecipient:
		t := &globTest{field: c.Type, pre: pre, glob: c.Pattern, pat: pat}
		switch c.Type {
		case ConditionSender:
			t.what = "sender"
		case ConditionSenderDomain:
			t.what = "sender domain"
		default:
			t.what = "recipient"
		}
		t.no = pre + t.what + " does not match " + pat
		return t, nil
	case ConditionSubject:
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return nil, err
		}
		return &subjectTest{re: re, yes: pre + "subject matches " + pat, no: pre + "subject does not match " + pat}, nil
	case ConditionHeader:
		t := &headerTest{name: c.Name}
		name := traceQuote(c.Name)
		if c.Pattern == "" {
			t.yes, t.no = pre+"has a "+name+" header", pre+"has no "+name+" header"
			return t, nil
		}
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return nil, err
		}
		t.re = re
		t.yes, t.no = pre+"a "+name+" header matches "+pat, pre+"no "+name+" header matches "+pat
		return t, nil
	case ConditionHasAttachment:
		has, none := pre+"has an attachment", pre+"has no attachment"
		if c.HasAttachment {
			return &hasAttachmentTest{want: true, yes: has, no: none}, nil
		}
		return &hasAttachmentTest{want: false, yes: none, no: has}, nil
	case ConditionAttachmentType:
		t := &attachmentTest{glob: c.Pattern, pre: pre + "has an attachment of type " + pat + ": ",
			no: pre + "has no attachment of type " + pat}
		if strings.HasPrefix(c.Pattern, ".") {
			t.dots = strings.Count(c.Pattern, ".")
		}
		return t, nil
	case ConditionSize:
		return newSizeTest(c, pre), nil
	case ConditionVerdict:
		what := pre + c.Check + " verdict is "
		return &verdictTest{check: c.Check, status: c.Status, yes: what + c.Status, no: what + "not " + c.Status}, nil
	case ConditionSenderKind:
		return &senderKindTest{internal: c.Value == SenderInternal, yes: pre + "sender is " + c.Value, no: pre + "sender is not " + c.Value}, nil
	case ConditionTime:
		return newTimeTest(c, pre)
	}
	return nil, fmt.Errorf("unknown condition type %q", c.Type)
}

type globTest struct {
	field              string // ConditionSender, ConditionSenderDomain or ConditionRecipient
	what, pre, pat, no string
	glob               string
}

func (t *globTest) test(f *Facts) (bool, string) {
	var v string
	switch t.field {
	case ConditionSender:
		v = f.Sender
	case ConditionSenderDomain:
		v = f.SenderDomain
	default:
		v = f.Recipient
	}
	if !globMatch(t.glob, v) && (isASCII(v) || !globMatch(t.glob, asciiDomainOf(v))) {
		return false, t.no
	}
	return true, t.pre + t.what + " " + traceQuote(v) + " matches " + t.pat
}

// asciiDomainOf returns an address or domain with its domain in ASCII, as patterns have it, for
// the rare sender whose domain came in Unicode.
func asciiDomainOf(v string) string {
	at := strings.LastIndexByte(v, '@')
	a, err := idna.Lookup.ToASCII(v[at+1:])
	if err != nil {
		return v
	}
	return v[:at+1] + a
}

type subjectTest struct {
	re      *regexp.Regexp
	yes, no string
}

func (t *subjectTest) test(f *Facts) (bool, string) {
	if t.re.MatchString(f.Subject) {
		return true, t.yes
	}
	return false, t.no
}

type headerTest struct {
	name    string
	re      *regexp.Regexp // nil: the field only has to be present
	yes, no string
}

func (t *headerTest) test(f *Facts) (bool, string) {
	for _, fl := range f.Header {
		if !strings.EqualFold(fl.Name, t.name) {
			continue
		}
		if t.re == nil || t.re.MatchString(mail.DecodeHeader(fl.Value)) {
			return true, t.yes
		}
	}
	return false, t.no
}

type hasAttachmentTest struct {
	want    bool
	yes, no string
}

func (t *hasAttachmentTest) test(f *Facts) (bool, string) {
	if (len(f.Attachments) > 0) == t.want {
		return true, t.yes
	}
	return false, t.no
}

type attachmentTest struct {
	glob string
	dots int // > 0: match this many dot-separated parts at the end of the file name
	pre  string
	no   string
}

func (t *attachmentTest) test(f *Facts) (bool, string) {
	for i := range f.Attachments {
		a := &f.Attachments[i]
		if t.dots > 0 {
			if ext, ok := extension(a.Filename, t.dots); ok && globMatch(t.glob, ext) {
				return true, t.pre + traceQuote(a.Filename)
			}
			continue
		}
		if globMatch(t.glob, a.ContentType) {
			if a.Filename == "" {
				return true, t.pre + "an unnamed " + a.ContentType + " part"
			}
			return true, t.pre + traceQuote(a.Filename) + " (" + a.ContentType + ")"
		}
	}
	return false, t.no
}

// extension returns the end of a file name that holds its last dots dots: ".exe" of
// "setup.exe" for 1, ".tar.gz" of "a.tar.gz" for 2. Trailing dots and spaces are ignored, as
// Windows ignores them when it opens "invoice.exe. ".
func extension(name string, dots int) (string, bool) {
	name = strings.TrimRight(name, ". ")
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			if dots--; dots == 0 {
				return name[i:], true
			}
		}
	}
	return "", false
}

type sizeTest struct {
	min, max int64
	pre      string
	bound    string // " is at least 1,000 bytes"
	no       string
}

func newSizeTest(c Condition, pre string) *sizeTest {
	t := &sizeTest{min: 0, max: 1<<63 - 1, pre: pre}
	switch {
	case c.Min != nil && c.Max != nil:
		t.min, t.max = *c.Min, *c.Max
		t.bound = " is between " + formatBytes(t.min) + " and " + formatBytes(t.max)
		t.no = pre + "size is not between " + formatBytes(t.min) + " and " + formatBytes(t.max)
	case c.Min != nil:
		t.min = *c.Min
		t.bound = " is at least " + formatBytes(t.min)
		t.no = pre + "size is less than " + formatBytes(t.min)
	default:
		t.max = *c.Max
		t.bound = " is at most " + formatBytes(t.max)
		t.no = pre + "size is more than " + formatBytes(t.max)
	}
	return t
}

func (t *sizeTest) test(f *Facts) (bool, string) {
	if f.Size < t.min || f.Size > t.max {
		return false, t.no
	}
	return true, t.pre + "size " + formatBytes(f.Size) + t.bound
}

// formatBytes writes a byte count with thousands separators: "10,485,760 bytes".
func formatBytes(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n == 1 {
		return "1 byte"
	}
	if n < 0 || len(s) <= 3 {
		return s + " bytes"
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/3 + 6)
	lead := len(s) % 3
	if lead == 0 {
		lead = 3
	}
	b.WriteString(s[:lead])
	for i := lead; i < len(s); i += 3 {
		b.WriteByte(',')
		b.WriteString(s[i : i+3])
	}
	b.WriteString(" bytes")
	return b.String()
}

type verdictTest struct {
	check, status string
	yes, no       string
}

func (t *verdictTest) test(f *Facts) (bool, string) {
	var got string
	switch t.check {
	case "spam":
		got = f.Verdicts.Spam
	case "virus":
		got = f.Verdicts.Virus
	case "spf":
		got = f.Verdicts.SPF
	case "dkim":
		got = f.Verdicts.DKIM
	case "dmarc":
		got = f.Verdicts.DMARC
	}
	if got == t.status {
		return true, t.yes
	}
	return false, t.no
}

type senderKindTest struct {
	internal bool
	yes, no  string
}

func (t *senderKindTest) test(f *Facts) (bool, string) {
	if f.Internal == t.internal {
		return true, t.yes
	}
	return false, t.no
}

type timeTest struct {
	loc      *time.Location
	days     [7]bool // by time.Weekday; all true when the condition names no days
	from, to int     // minutes after midnight; to may be 24*60
	pre      string
	window   string // "mon, tue 09:00–17:00 Europe/London"
	no       string
}

func newTimeTest(c Condition, pre string) (*timeTest, error) {
	loc, err := calendar.LoadZone(c.TimeZone)
	if err != nil {
		return nil, err
	}
	t := &timeTest{loc: loc, from: 0, to: minutesPerDay, pre: pre}
	if len(c.Days) == 0 {
		t.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range c.Days {
		// weekdays starts on Monday, time.Weekday on Sunday.
		t.days[(slices.Index(weekdays, d)+1)%7] = true
	}
	if c.From != "" {
		t.from, _ = parseClock(c.From, false)
	}
	if c.To != "" {
		t.to, _ = parseClock(c.To, true)
	}
	var parts []string
	if len(c.Days) > 0 {
		parts = append(parts, strings.Join(c.Days, ", "))
	}
	switch {
	case c.From != "" && c.To != "":
		parts = append(parts, c.From+"–"+c.To)
	case c.From != "":
		parts = append(parts, "from "+c.From)
	case c.To != "":
		parts = append(parts, "until "+c.To)
	}
	parts = append(parts, c.TimeZone)
	t.window = strings.Join(parts, " ")
	t.no = pre + "received outside " + t.window
	return t, nil
}

func (t *timeTest) test(f *Facts) (bool, string) {
	local := f.ReceivedAt.In(t.loc)
	if !t.within(local) {
		return false, t.no
	}
	return true, t.pre + "received " + local.Format("Mon 15:04") + ", within " + t.window
}

func (t *timeTest) within(local time.Time) bool {
	day := local.Weekday()
	m := local.Hour()*60 + local.Minute()
	if t.from < t.to {
		return t.days[day] && t.from <= m && m < t.to
	}
	// The window spans midnight: its early hours belong to the day before.
	if m >= t.from {
		return t.days[day]
	}
	return m < t.to && t.days[(day+6)%7]
}

// traceQuote quotes a value for the trace, leaving what people typed as it was unless it holds
// characters that would not print.
func traceQuote(s string) string {
	const max = 200
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	for _, r := range s {
		if r == utf8.RuneError || r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return strconv.Quote(s)
		}
	}
	return `"` + s + `"`
}

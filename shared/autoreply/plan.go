package autoreply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/routing"
)

// Store reads settings; directory.SettingStore satisfies it.
type Store interface {
	Setting(ctx context.Context, kind, id string) (directory.Setting, error)
}

// Promiser gives the time a group promises to answer a message by, from its SLA policy, in the
// zone of the policy's calendar (the reply shows it there); ok is false when the group has none,
// and its acknowledgement's own promise applies.
type Promiser interface {
	Promise(ctx context.Context, group string, received time.Time) (by time.Time, hours string, ok bool, err error)
}

// Planner decides which automatic replies a routed message gets, and renders them. It sends
// nothing and records nothing: the caller sends each reply that may go, then calls Record.
type Planner struct {
	Settings  Store
	Directory Directory
	// Ledger remembers replies sent; nil checks no limits (a preview with no state).
	Ledger Ledger
	// Limits are the cap per sender; how often one response repeats comes from each setting.
	Limits Limits
	// Promise, when set, is the SLA policy's deadline for a group.
	Promise Promiser
}

// Reply is one automatic reply a message gets, or would get but for Verdict.
type Reply struct {
	Kind string `json:"kind"`
	// Recipient is the envelope recipient that answers; Responder the mailbox or group behind
	// it, as the ledger knows it: "mailbox:ana@example.com", "group:sales".
	Recipient string `json:"recipient"`
	Responder string `json:"responder"`
	// From is who the reply is from: the address the sender wrote to. To is the envelope sender.
	From mail.Address `json:"from"`
	To   string       `json:"to"`
	// Verdict says whether the reply goes, and which rule stops it when not.
	Verdict Verdict `json:"verdict"`
	// Response names the reply and its content: the same response goes to a sender once per
	// Every.
	Response string        `json:"response,omitempty"`
	Every    time.Duration `json:"-"`
	Language string        `json:"language,omitempty"`
	Subject  string        `json:"subject,omitempty"`
	Body     string        `json:"body,omitempty"`
	// InReplyTo and References thread the reply to the original.
	InReplyTo  string   `json:"-"`
	References []string `json:"-"`
}

// Plan returns the automatic replies a routed message gets: a mailbox's out-of-office reply
// when it was written to directly, a group's acknowledgement of a new conversation, a closed
// mailbox's notice. A catch-all never answers: nobody wrote to it. Replies that must not go are
// returned too, with the rule that stops them, for explain and preview; each responder answers
// at most once.
func (p *Planner) Plan(ctx context.Context, msg routing.Message, m *mail.Message, dec routing.Decision) ([]Reply, error) {
	var out []Reply
	seen := map[string]bool{}
	for _, rc := range dec.Recipients {
		var (
			r   Reply
			ok  bool
			err error
		)
		switch {
		case rc.Outcome == routing.Closed:
			r, ok, err = p.closed(ctx, msg, m, rc)
		case rc.Outcome != routing.Deliver:
			continue
		case rc.Kind == directory.KindGroup:
			r, ok, err = p.acknowledgement(ctx, msg, m, rc)
		case rc.Kind == directory.KindMailbox:
			r, ok, err = p.outOfOffice(ctx, msg, m, rc)
		}
		if err != nil {
			return nil, err
		}
		if !ok || seen[r.Responder] {
			continue
		}
		seen[r.Responder] = true
		out = append(out, r)
	}
	return out, nil
}

// Record remembers a reply sent: call it only once the send succeeded.
func (p *Planner) Record(ctx context.Context, r Reply, at time.Time) error {
	if p.Ledger == nil {
		return nil
	}
	l := p.Limits
	l.Every = r.Every
	return l.Record(ctx, p.Ledger, r.Responder, r.To, r.Response, at)
}

// reply is what the three kinds share once their setting is read.
type reply struct {
	kind, responder string
	from            mail.Address
	addresses       []string
	templates       []Template
	// language is the setting's choice; fallback the mailbox's locale, used when neither the
	// setting nor the message says.
	language, fallback string
	every              time.Duration
	period             string // what makes a new response besides the text: an out-of-office period
	vars               Vars
}

func (p *Planner) outOfOffice(ctx context.Context, msg routing.Message, m *mail.Message, rc routing.Recipient) (Reply, bool, error) {
	o, mb, found, err := mailboxSetting[OutOfOffice](ctx, p, KindOutOfOffice, rc.Target)
	if !found || err != nil || !o.Active(mb.TimeZone, msg.ReceivedAt) {
		return Reply{}, false, nil
	}
	_, end, _ := o.Period(mb.TimeZone)
	texts := o.Internal
	if !msg.Internal && len(o.External) > 0 {
		texts = o.External
	}
	zone := o.TimeZone
	if zone == "" {
		zone = mb.TimeZone
	}
	rp := reply{
		kind: KindOutOfOffice, responder: directory.KindMailbox + ":" + mb.Address,
		from:      mail.Address{Name: mb.DisplayName, Address: mb.Address},
		addresses: addressesOf(rc, mb.Address),
		templates: texts, language: o.Language, fallback: mb.Locale, every: days(o.RepeatDays),
		period: o.Start + "/" + o.End + "/" + zone,
		vars:   Vars{Name: mb.DisplayName, Until: end, Location: location(zone)},
	}
	r := p.build(msg, m, rc, rp)
	if r.Verdict.Reply && !msg.Internal && o.Audience == AudienceInternal {
		r.Verdict = Verdict{Rule: "internal-only", Source: "the out-of-office setting",
			Reason: "the out-of-office reply answers only senders of the organisation"}
	}
	return p.finish(ctx, msg, m, r, rp)
}

func (p *Planner) acknowledgement(ctx context.Context, msg routing.Message, m *mail.Message, rc routing.Recipient) (Reply, bool, error) {
	a, found, err := setting[Acknowledgement](ctx, p, KindAcknowledgement, rc.Target)
	if !found || err != nil || !a.Enabled {
		return Reply{}, false, err
	}
	g, err := p.Directory.Group(ctx, rc.Target)
	if fault.Is(err, fault.NotFound) {
		return Reply{}, false, nil
	}
	if err != nil {
		return Reply{}, false, err
	}
	cal := calendar.Default()
	if a.Calendar != nil {
		cal = *a.Calendar
	}
	compiled, err := cal.Compile()
	if err != nil {
		// Checked when stored; a calendar that no longer compiles is Mailroom's bug.
		return Reply{}, false, fault.Wrap(fault.Internal, "autoreply.acknowledgement", err)
	}
	vars := Vars{Name: g.Name, BusinessHours: compiled.String(), Location: compiled.Location()}
	by, hours, ok := time.Time{}, "", false
	if p.Promise != nil {
		if by, hours, ok, err = p.Promise.Promise(ctx, g.ID, msg.ReceivedAt); err != nil {
			return Reply{}, false, err
		}
	}
	switch {
	case ok:
		// The policy's calendar, in its zone, takes the place of the acknowledgement's.
		vars.PromisedBy, vars.Location = by, by.Location()
		if hours != "" {
			vars.BusinessHours = hours
		}
	case a.PromiseHours > 0:
		vars.PromisedBy = compiled.Add(msg.ReceivedAt, time.Duration(a.PromiseHours)*time.Hour)
	}
	rp := reply{
		kind: KindAcknowledgement, responder: directory.KindGroup + ":" + g.ID,
		from:      mail.Address{Name: g.Name, Address: rc.Address},
		addresses: append(addressesOf(rc, rc.Address), g.Addresses...),
		templates: a.Templates, language: a.Language, every: days(a.RepeatDays),
		vars: vars,
	}
	r := p.build(msg, m, rc, rp)
	if r.Verdict.Reply && continues(m) {
		r.Verdict = Verdict{Rule: "not-new", Source: "Mailroom: acknowledgements answer new conversations",
			Reason: "the message replies to an earlier one (In-Reply-To or References): the conversation is not new"}
	}
	return p.finish(ctx, msg, m, r, rp)
}

func (p *Planner) closed(ctx context.Context, msg routing.Message, m *mail.Message, rc routing.Recipient) (Reply, bool, error) {
	n, mb, found, err := mailboxSetting[ClosedNotice](ctx, p, KindClosed, rc.Target)
	if !found || err != nil || !n.Enabled {
		return Reply{}, false, err
	}
	rp := reply{
		kind: KindClosed, responder: directory.KindMailbox + ":" + mb.Address,
		from:      mail.Address{Name: mb.DisplayName, Address: mb.Address},
		addresses: addressesOf(rc, mb.Address),
		templates: n.Templates, language: n.Language, fallback: mb.Locale, every: days(n.RepeatDays),
		vars: Vars{Name: mb.DisplayName, Successor: n.Successor, Location: location(mb.TimeZone)},
	}
	return p.finish(ctx, msg, m, p.build(msg, m, rc, rp), rp)
}

// build applies the rules of when not to reply.
func (p *Planner) build(msg routing.Message, m *mail.Message, rc routing.Recipient, rp reply) Reply {
	r := Reply{
		Kind: rp.kind, Recipient: rc.Address, Responder: rp.responder, From: rp.from,
		To: strings.ToLower(strings.TrimSpace(msg.EnvelopeFrom)), Every: rp.every,
		InReplyTo: m.MessageID, References: references(m),
	}
	r.Verdict = Suppress(Incoming{
		Kind: rp.kind, EnvelopeFrom: msg.EnvelopeFrom, Recipient: rc.Address, Addresses: rp.addresses,
		Header: m.Header, ContentType: m.ContentType, ContentTypeParams: m.ContentTypeParams,
		PartTypes: PartTypesOf(m), Verdicts: msg.Verdicts,
	})
	return r
}

// finish renders the reply and, when it may still go, checks how often this sender was
// answered.
func (p *Planner) finish(ctx context.Context, msg routing.Message, m *mail.Message, r Reply, rp reply) (Reply, bool, error) {
	t, err := chooseTemplate(rp.kind, rp.templates, rp.language, m.ContentLanguage, m.ContentTypeParams["charset"], rp.fallback)
	if err != nil {
		return Reply{}, false, err
	}
	c, err := Parse(t)
	if err != nil {
		return Reply{}, false, fault.Wrap(fault.Internal, "autoreply.Plan", err)
	}
	v := rp.vars
	v.SenderAddress = msg.Sender
	v.Recipient = rp.from.Address
	v.OriginalSubject = msg.Subject
	if len(m.From) > 0 {
		v.SenderName = m.From[0].Name
	}
	// Times are shown in the sender's zone when Mailroom knows it: a colleague's mailbox says.
	if msg.Internal && msg.Sender != "" {
		if mb, err := p.Directory.Mailbox(ctx, msg.Sender); err == nil && mb.TimeZone != "" {
			v.Location = location(mb.TimeZone)
		} else if err != nil && !fault.Is(err, fault.NotFound) {
			return Reply{}, false, err
		}
	}
	if r.Subject, r.Body, err = c.Render(v); err != nil {
		return Reply{}, false, err
	}
	r.Language = c.Language()
	sum := sha256.Sum256([]byte(rp.kind + "\x00" + t.Language + "\x00" + t.Subject + "\x00" + t.Body + "\x00" + rp.period))
	r.Response = hex.EncodeToString(sum[:8])
	if r.Verdict.Reply && p.Ledger != nil {
		l := p.Limits
		l.Every = rp.every
		if r.Verdict, err = l.Allow(ctx, p.Ledger, r.Responder, r.To, r.Response, msg.ReceivedAt); err != nil {
			return Reply{}, false, err
		}
	}
	return r, true, nil
}

// setting reads the setting of a kind for a mailbox or group; found is false when it has none.
func setting[T OutOfOffice | Acknowledgement | ClosedNotice](ctx context.Context, p *Planner, kind, id string) (T, bool, error) {
	var zero T
	if p.Settings == nil || id == "" {
		return zero, false, nil
	}
	s, err := p.Settings.Setting(ctx, kind, id)
	if fault.Is(err, fault.NotFound) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	v, err := Of[T](s)
	return v, err == nil, err
}

// mailboxSetting reads a mailbox's setting and the mailbox; found is false when either is
// missing.
func mailboxSetting[T OutOfOffice | ClosedNotice](ctx context.Context, p *Planner, kind, address string) (T, directory.Mailbox, bool, error) {
	v, found, err := setting[T](ctx, p, kind, address)
	if !found || err != nil {
		return v, directory.Mailbox{}, false, err
	}
	mb, err := p.Directory.Mailbox(ctx, address)
	if fault.Is(err, fault.NotFound) {
		return v, mb, false, nil
	}
	return v, mb, err == nil, err
}

// chooseTemplate picks the text to answer in: in the language the setting names, else the
// message's where it is clear (Content-Language, then charset), else the mailbox's locale, else
// English. The mailbox's locale comes after the message because every mailbox has one (English
// unless changed): first, it would leave the message no say. Among a setting's own texts, the
// first text answers when none is in a language so chosen.
func chooseTemplate(kind string, own []Template, setting, contentLanguage, charset, fallback string) (Template, error) {
	fromMessage, _ := messageLanguage(contentLanguage, charset)
	var prefs []string
	for _, n := range []string{setting, fromMessage, fallback, "en"} {
		if n, ok := match(n); ok && !slices.Contains(prefs, n) {
			prefs = append(prefs, n)
		}
	}
	if len(own) == 0 {
		t, ok := Defaults(kind, prefs[0])
		if !ok {
			return Template{}, fault.New(fault.Internal, "autoreply.Plan", "no shipped %s text in %s", kind, prefs[0])
		}
		return t, nil
	}
	for _, lang := range prefs {
		for _, t := range own {
			if n, ok := match(t.Language); ok && n == lang {
				return t, nil
			}
		}
	}
	return own[0], nil
}

// continues reports whether a message replies to an earlier one.
func continues(m *mail.Message) bool {
	return len(m.InReplyTo) > 0 || len(m.References) > 0
}

func references(m *mail.Message) []string {
	if len(m.References) > 0 {
		return m.References
	}
	if len(m.InReplyTo) == 1 {
		return m.InReplyTo
	}
	return nil
}

// addressesOf are the addresses a responder was written to at: the envelope recipient without
// its +tag, and the mailbox's or group's own.
func addressesOf(rc routing.Recipient, own string) []string {
	out := []string{rc.Address, own}
	if rc.Tag != "" {
		if at := strings.LastIndexByte(rc.Address, '@'); at > 0 {
			out = append(out, strings.TrimSuffix(rc.Address[:at], "+"+rc.Tag)+rc.Address[at:])
		}
	}
	return out
}

func days(n int) time.Duration {
	if n <= 0 {
		return DefaultEvery
	}
	return time.Duration(n) * 24 * time.Hour
}

func location(zone string) *time.Location {
	if zone == "" {
		return time.UTC
	}
	loc, err := calendar.LoadZone(zone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// String is a reply as one log-safe line: who answers whom, and why not when it does not.
func (r Reply) String() string {
	if r.Verdict.Reply {
		return fmt.Sprintf("%s %s -> %s", r.Kind, r.Responder, r.To)
	}
	return fmt.Sprintf("%s %s -> %s suppressed by %s", r.Kind, r.Responder, r.To, r.Verdict.Rule)
}

package autoreply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/routing"
)

// Audiences of an out-of-office reply.
const (
	AudienceEveryone = "everyone" // internal and external senders
	AudienceInternal = "internal" // only senders of the organisation
)

// Bounds on settings.
const (
	MaxRepeatDays = 365
	maxTemplates  = 16
	// maxPromise bounds an acknowledgement's promise: a year of nine-hour days.
	maxPromise = 2400
)

// OutOfOffice is a person's out-of-office reply, set on their mailbox by them or by an
// administrator. It answers between Start and End, in the mailbox's time zone unless TimeZone
// says otherwise.
type OutOfOffice struct {
	Mailbox string `json:"mailbox"`
	Enabled bool   `json:"enabled"`
	// Start and End bound when it answers: a local time in TimeZone ("2026-12-20T09:00") or an
	// RFC 3339 instant. No Start: from when it is enabled; no End: until it is switched off.
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
	// TimeZone is an IANA zone; the mailbox's when empty.
	TimeZone string `json:"timeZone,omitempty"`
	// Audience is who gets it: AudienceEveryone (the default) or AudienceInternal.
	Audience string `json:"audience,omitempty"`
	// Internal is the text for senders of the organisation, per language; External for everyone
	// else, Internal when empty. The shipped text when both are empty.
	Internal []Template `json:"internal,omitempty"`
	External []Template `json:"external,omitempty"`
	// Language is the language to answer in whatever the message's. When empty: the message's
	// language where its Content-Language or charset makes it clear, else the mailbox's locale.
	Language string `json:"language,omitempty"`
	// RepeatDays is how long before the same sender gets it again (RFC 5230 :days); 7 when 0.
	RepeatDays int `json:"repeatDays,omitempty"`
	directory.Meta
}

// Acknowledgement is a group's "we received your message and will reply by …" to each new
// conversation.
type Acknowledgement struct {
	Group   string `json:"group"`
	Enabled bool   `json:"enabled"`
	// PromiseHours is how many business hours on Calendar the group promises to answer within;
	// 0 promises no time. A group's SLA policy, where it has one, takes its place.
	PromiseHours int `json:"promiseHours,omitempty"`
	// Calendar is when the group works: Monday to Friday, 09:00 to 17:00 UTC when empty.
	Calendar *calendar.Calendar `json:"calendar,omitempty"`
	// Templates are the text per language; the shipped text when empty.
	Templates []Template `json:"templates,omitempty"`
	// Language is the language to answer in whatever the message's; when empty, the message's
	// where it is clear, else English.
	Language   string `json:"language,omitempty"`
	RepeatDays int    `json:"repeatDays,omitempty"`
	directory.Meta
}

// ClosedNotice is what a closed mailbox answers, and where its mail goes instead.
type ClosedNotice struct {
	Mailbox string `json:"mailbox"`
	Enabled bool   `json:"enabled"`
	// Successor is who to write to instead; the notice names them.
	Successor string `json:"successor,omitempty"`
	// Forward sends the mailbox's mail on to Successor as well as answering.
	Forward   bool       `json:"forward,omitempty"`
	Templates []Template `json:"templates,omitempty"`
	// Language is as an out-of-office reply's.
	Language   string `json:"language,omitempty"`
	RepeatDays int    `json:"repeatDays,omitempty"`
	directory.Meta
}

// Directory is what settings and replies read from the directory; directory.Store satisfies it.
type Directory interface {
	Mailbox(ctx context.Context, address string) (directory.Mailbox, error)
	Group(ctx context.Context, id string) (directory.Group, error)
}

// OutOfOfficeSetting tells the directory how to check and who may change out-of-office
// replies, kept per mailbox: the person themselves, and administrators.
func OutOfOfficeSetting(dir Directory) directory.SettingKind {
	return directory.SettingKind{
		Kind: KindOutOfOffice,
		Validate: func(ctx context.Context, id string, body []byte) ([]byte, error) {
			const op = "autoreply.OutOfOffice"
			var o OutOfOffice
			if err := decode(op, body, &o); err != nil {
				return nil, err
			}
			mb, err := mailbox(ctx, dir, op, id, o.Mailbox)
			if err != nil {
				return nil, err
			}
			o.Mailbox, o.Meta = mb.Address, directory.Meta{}
			if o.Audience == "" {
				o.Audience = AudienceEveryone
			}
			if o.Audience != AudienceEveryone && o.Audience != AudienceInternal {
				return nil, fault.InvalidField(op, "audience", "must be %q or %q", AudienceEveryone, AudienceInternal)
			}
			if _, _, err := o.Period(mb.TimeZone); err != nil {
				return nil, err
			}
			if err := checkTemplates(op, "internal", o.Internal); err != nil {
				return nil, err
			}
			if err := checkTemplates(op, "external", o.External); err != nil {
				return nil, err
			}
			if err := checkCommon(op, o.Language, o.RepeatDays); err != nil {
				return nil, err
			}
			return json.Marshal(o)
		},
		Present: directory.PresentAs(Of[OutOfOffice]),
		Access: func(ctx context.Context, p directory.Principal, op, id string, write bool) error {
			if p.Has(directory.RoleEmployee) && p.Email != "" && p.Email == id {
				return p.Allow(op, write, directory.RoleEmployee)
			}
			return adminAccess(p, op, write)
		},
	}
}

// AcknowledgementSetting tells the directory how to check and who may change a group's
// acknowledgement: administrators, and the group's owners.
func AcknowledgementSetting(dir Directory) directory.SettingKind {
	return directory.SettingKind{
		Kind: KindAcknowledgement,
		Validate: func(ctx context.Context, id string, body []byte) ([]byte, error) {
			const op = "autoreply.Acknowledgement"
			var a Acknowledgement
			if err := decode(op, body, &a); err != nil {
				return nil, err
			}
			if a.Group != "" && a.Group != id {
				return nil, fault.InvalidField(op, "group", "%q differs from the group %q it is set on", a.Group, id)
			}
			if _, err := dir.Group(ctx, id); fault.Is(err, fault.NotFound) {
				return nil, fault.InvalidField(op, "group", "there is no group %q", id)
			} else if err != nil {
				return nil, err
			}
			a.Group, a.Meta = id, directory.Meta{}
			if a.PromiseHours < 0 || a.PromiseHours > maxPromise {
				return nil, fault.InvalidField(op, "promiseHours", "must be from 0 to %d business hours", maxPromise)
			}
			if a.Calendar != nil {
				c, err := a.Calendar.Compile()
				if err != nil {
					return nil, prefixField(err, "calendar.")
				}
				norm := c.Calendar()
				a.Calendar = &norm
			}
			if err := checkTemplates(op, "templates", a.Templates); err != nil {
				return nil, err
			}
			if err := checkCommon(op, a.Language, a.RepeatDays); err != nil {
				return nil, err
			}
			return json.Marshal(a)
		},
		Present: directory.PresentAs(Of[Acknowledgement]),
		Access: func(ctx context.Context, p directory.Principal, op, id string, write bool) error {
			if p.Has(directory.RoleAdmin) || p.Has(directory.RoleAuditor) || p.Email == "" {
				return adminAccess(p, op, write)
			}
			// Owners run their group: they may say how it acknowledges mail.
			g, err := dir.Group(ctx, id)
			if err != nil && !fault.Is(err, fault.NotFound) {
				return err
			}
			if err == nil && slices.Contains(g.Owners, p.Email) {
				return p.Allow(op, write, directory.RoleGroupManager, directory.RoleEmployee)
			}
			return adminAccess(p, op, write)
		},
	}
}

// ClosedNoticeSetting tells the directory how to check a closed mailbox's notice; only
// administrators set it, as part of closing the mailbox.
func ClosedNoticeSetting(dir Directory) directory.SettingKind {
	return directory.SettingKind{
		Kind: KindClosed,
		Validate: func(ctx context.Context, id string, body []byte) ([]byte, error) {
			const op = "autoreply.ClosedNotice"
			var n ClosedNotice
			if err := decode(op, body, &n); err != nil {
				return nil, err
			}
			mb, err := mailbox(ctx, dir, op, id, n.Mailbox)
			if err != nil {
				return nil, err
			}
			n.Mailbox, n.Meta = mb.Address, directory.Meta{}
			if n.Successor != "" {
				s, err := directory.NormalizeAddress(n.Successor)
				if err != nil {
					return nil, fault.InvalidField(op, "successor", "%q is not an address: %v", n.Successor, err)
				}
				if s == mb.Address {
					return nil, fault.InvalidField(op, "successor", "the mailbox cannot succeed itself")
				}
				n.Successor = s
			}
			if n.Forward && n.Successor == "" {
				return nil, fault.InvalidField(op, "forward", "forwarding needs a successor")
			}
			if err := checkTemplates(op, "templates", n.Templates); err != nil {
				return nil, err
			}
			if err := checkCommon(op, n.Language, n.RepeatDays); err != nil {
				return nil, err
			}
			return json.Marshal(n)
		},
		Present: directory.PresentAs(Of[ClosedNotice]),
	}
}

func adminAccess(p directory.Principal, op string, write bool) error {
	if write {
		return p.Allow(op, true, directory.RoleAdmin)
	}
	return p.Allow(op, false, directory.RoleAdmin, directory.RoleAuditor)
}

// decode reads a setting strictly: an unknown field is a mistake worth naming.
func decode(op string, body []byte, v any) error {
	return directory.Decode(op, body, v)
}

func mailbox(ctx context.Context, dir Directory, op, id, named string) (directory.Mailbox, error) {
	if named != "" && !strings.EqualFold(named, id) {
		return directory.Mailbox{}, fault.InvalidField(op, "mailbox", "%q differs from the mailbox %q it is set on", named, id)
	}
	mb, err := dir.Mailbox(ctx, id)
	if fault.Is(err, fault.NotFound) {
		return directory.Mailbox{}, fault.InvalidField(op, "mailbox", "there is no mailbox %q", id)
	}
	return mb, err
}

func checkTemplates(op, field string, ts []Template) error {
	if len(ts) > maxTemplates {
		return fault.InvalidField(op, field, "at most %d languages", maxTemplates)
	}
	seen := map[string]bool{}
	for i, t := range ts {
		c, err := Parse(t)
		if err != nil {
			return prefixField(err, fmt.Sprintf("%s[%d].", field, i))
		}
		// Tags that choose the same language ("en", "en-GB") would leave one text unused.
		lang := c.Language()
		if n, ok := match(lang); ok {
			lang = n
		}
		if seen[lang] {
			return fault.InvalidField(op, fmt.Sprintf("%s[%d].language", field, i), "a text in %s is given already", lang)
		}
		seen[lang] = true
	}
	return nil
}

func checkCommon(op, lang string, repeatDays int) error {
	if lang != "" {
		if n, ok := match(lang); !ok || !sameBase(lang, n) {
			return fault.InvalidField(op, "language", "%q is none of the languages replies are written in: %s", lang, strings.Join(names, ", "))
		}
	}
	if repeatDays < 0 || repeatDays > MaxRepeatDays {
		return fault.InvalidField(op, "repeatDays", "must be from 1 to %d days (0 for the default of 7)", MaxRepeatDays)
	}
	return nil
}

// sameBase says whether two tags are the same language ("zh-CN" and "zh-Hans" are; "tlh", which
// the matcher maps to English for want of anything closer, and "en" are not).
func sameBase(a, b string) bool {
	ta, errA := language.Parse(a)
	tb, errB := language.Parse(b)
	if errA != nil || errB != nil {
		return false
	}
	ba, _ := ta.Base()
	bb, _ := tb.Base()
	return ba == bb
}

// prefixField puts a path before the field an Invalid fault names: "body" becomes
// "internal[0].body".
func prefixField(err error, prefix string) error {
	var f *fault.Error
	if !errors.As(err, &f) || f.Kind != fault.Invalid || f.Field == "" {
		return err
	}
	out := *f
	out.Field = prefix + f.Field
	return &out
}

func setMeta(v any, m directory.Meta) {
	switch x := v.(type) {
	case *OutOfOffice:
		x.Meta = m
	case *Acknowledgement:
		x.Meta = m
	case *ClosedNotice:
		x.Meta = m
	}
}

// Of reads a stored setting into its type, with the setting's version and times.
func Of[T OutOfOffice | Acknowledgement | ClosedNotice](s directory.Setting) (T, error) {
	var v T
	if err := json.Unmarshal(s.Body, &v); err != nil {
		return v, fault.Wrap(fault.Internal, "autoreply.Of", err)
	}
	setMeta(&v, s.Meta)
	return v, nil
}

// localLayouts are the forms a local time may take.
var localLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

// Period is when the reply answers, as instants: zero when open at that end. zone is the
// mailbox's time zone, used when the setting names none.
func (o OutOfOffice) Period(zone string) (start, end time.Time, err error) {
	const op = "autoreply.OutOfOffice"
	name := o.TimeZone
	field := "timeZone"
	if name == "" {
		name, field = zone, "mailbox.timeZone"
	}
	loc := time.UTC
	if name != "" {
		if loc, err = calendar.LoadZone(name); err != nil || name == "Local" {
			return start, end, fault.InvalidField(op, field, "%q is not an IANA time zone", name)
		}
	}
	if start, err = instant(op, "start", o.Start, loc); err != nil {
		return start, end, err
	}
	if end, err = instant(op, "end", o.End, loc); err != nil {
		return start, end, err
	}
	if !start.IsZero() && !end.IsZero() && !end.After(start) {
		return start, end, fault.InvalidField(op, "end", "must be after start")
	}
	return start, end, nil
}

func instant(op, field, v string, loc *time.Location) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fault.InvalidField(op, field, "%q is neither a local time (2026-12-20T09:00) nor an RFC 3339 instant", v)
}

// Active says whether the reply answers at t.
func (o OutOfOffice) Active(zone string, t time.Time) bool {
	if !o.Enabled {
		return false
	}
	start, end, err := o.Period(zone)
	if err != nil {
		return false
	}
	return (start.IsZero() || !t.Before(start)) && (end.IsZero() || t.Before(end))
}

// ClosedNotices tells routing what closed mailboxes do with their mail, from their stored
// notices: a mailbox with an enabled notice answers instead of bouncing.
type ClosedNotices struct{ Settings Store }

var _ routing.ClosedMailboxes = ClosedNotices{}

// ClosedNotice reads the mailbox's notice.
func (c ClosedNotices) ClosedNotice(ctx context.Context, mailbox string) (successor string, forward, ok bool, err error) {
	s, err := c.Settings.Setting(ctx, KindClosed, mailbox)
	if fault.Is(err, fault.NotFound) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, err
	}
	n, err := Of[ClosedNotice](s)
	if err != nil || !n.Enabled {
		return "", false, false, err
	}
	return n.Successor, n.Forward && n.Successor != "", true, nil
}

// Package sla is Mailroom's service levels: conversations that need an answer, the business
// time they may take (policies on business calendars), who is told before and after that time
// runs out, and reports of how well a group keeps its promises.
package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mailroom/mailroom/shared/calendar"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// Setting kinds.
const (
	PolicyKind   = "sla-policy"
	CalendarKind = "calendar"
)

// Defaults and bounds of a policy.
const (
	DefaultWarnPercent = 75
	maxTargetHours     = 2400 // a year of nine-hour days
	maxEscalation      = 20
)

// Policy is a service level: how much business time a conversation may wait for an answer.
type Policy struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Calendar is the id of the business calendar the times run on; Monday to Friday, 09:00 to
	// 17:00 UTC when empty.
	Calendar string `json:"calendar,omitempty"`
	// FirstResponseHours is the business time to the first answer; NextResponseHours to each
	// answer after the customer writes again (FirstResponseHours when 0).
	FirstResponseHours float64 `json:"firstResponseHours"`
	NextResponseHours  float64 `json:"nextResponseHours,omitempty"`
	// WarnPercent is how much of the target may pass before escalation contacts are warned.
	WarnPercent int `json:"warnPercent,omitempty"`
	// Escalation are the addresses told of warnings and breaches.
	Escalation []string `json:"escalation,omitempty"`
	// Groups and Mailboxes the policy applies to; a routing rule's sla action applies it to any
	// message.
	Groups    []string `json:"groups,omitempty"`
	Mailboxes []string `json:"mailboxes,omitempty"`
	// HoldingReply sends the customer one reply when the promise is missed, promising an answer
	// within HoldingHours more business hours (the target when 0).
	HoldingReply bool    `json:"holdingReply,omitempty"`
	HoldingHours float64 `json:"holdingHours,omitempty"`
	// SubjectToken threads a message that names no earlier one by the conversation's token in
	// its subject ("[#C7K2QX9PA]"), for mail systems that drop In-Reply-To and References.
	SubjectToken bool `json:"subjectToken,omitempty"`
	directory.Meta
}

// Target is the business time of a target: "first" or "next".
func (p Policy) Target(target string) time.Duration {
	h := p.FirstResponseHours
	if target == TargetNext && p.NextResponseHours > 0 {
		h = p.NextResponseHours
	}
	return hours(h)
}

// warnAfter is how much of a target passes before the warning.
func (p Policy) warnAfter(target string) time.Duration {
	pct := p.WarnPercent
	if pct <= 0 {
		pct = DefaultWarnPercent
	}
	return p.Target(target) * time.Duration(pct) / 100
}

func (p Policy) holding(target string) time.Duration {
	if p.HoldingHours > 0 {
		return hours(p.HoldingHours)
	}
	return p.Target(target)
}

func hours(h float64) time.Duration { return time.Duration(math.Round(h * float64(time.Hour))) }

// CalendarSetting is a named business calendar, kept as a directory setting.
type CalendarSetting struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	calendar.Calendar
	directory.Meta
}

// Directory is what policies are checked against; directory.Store satisfies it.
type Directory interface {
	Mailbox(ctx context.Context, address string) (directory.Mailbox, error)
	Group(ctx context.Context, id string) (directory.Group, error)
	Setting(ctx context.Context, kind, id string) (directory.Setting, error)
}

// PolicySetting tells the directory how to check an SLA policy: targets within bounds, its
// calendar, groups and mailboxes existing, escalation contacts addresses.
func PolicySetting(dir Directory) directory.SettingKind {
	return directory.SettingKind{
		Kind: PolicyKind,
		Validate: func(ctx context.Context, id string, body []byte) ([]byte, error) {
			const op = "sla.Policy"
			var p Policy
			if err := directory.Decode(op, body, &p); err != nil {
				return nil, err
			}
			if p.ID != "" && p.ID != id {
				return nil, fault.InvalidField(op, "id", "%q differs from the policy %q it is set on", p.ID, id)
			}
			p.ID, p.Meta = id, directory.Meta{}
			if p.Name == "" {
				p.Name = id
			}
			for _, t := range []struct {
				field string
				h     float64
				need  bool
			}{{"firstResponseHours", p.FirstResponseHours, true}, {"nextResponseHours", p.NextResponseHours, false}, {"holdingHours", p.HoldingHours, false}} {
				if t.h < 0 || t.h > maxTargetHours || (t.need && t.h == 0) || math.IsNaN(t.h) {
					return nil, fault.InvalidField(op, t.field, "must be more than 0 and at most %d business hours", maxTargetHours)
				}
			}
			if p.WarnPercent < 0 || p.WarnPercent >= 100 {
				return nil, fault.InvalidField(op, "warnPercent", "must be from 1 to 99 (0 for the default of %d)", DefaultWarnPercent)
			}
			if p.Calendar != "" {
				if _, err := dir.Setting(ctx, CalendarKind, p.Calendar); fault.Is(err, fault.NotFound) {
					return nil, fault.InvalidField(op, "calendar", "there is no calendar %q", p.Calendar)
				} else if err != nil {
					return nil, err
				}
			}
			if len(p.Escalation) > maxEscalation {
				return nil, fault.InvalidField(op, "escalation", "at most %d addresses", maxEscalation)
			}
			for i, a := range p.Escalation {
				n, err := directory.NormalizeAddress(a)
				if err != nil {
					return nil, fault.InvalidField(op, fmt.Sprintf("escalation[%d]", i), "%q is not an address: %v", a, err)
				}
				p.Escalation[i] = n
			}
			for i, g := range p.Groups {
				if _, err := dir.Group(ctx, g); fault.Is(err, fault.NotFound) {
					return nil, fault.InvalidField(op, fmt.Sprintf("groups[%d]", i), "there is no group %q", g)
				} else if err != nil {
					return nil, err
				}
			}
			for i, m := range p.Mailboxes {
				n, err := directory.NormalizeAddress(m)
				if err == nil {
					_, err = dir.Mailbox(ctx, n)
				}
				if fault.Is(err, fault.NotFound) || (err != nil && fault.KindOf(err) == fault.Invalid) {
					return nil, fault.InvalidField(op, fmt.Sprintf("mailboxes[%d]", i), "there is no mailbox %q", m)
				} else if err != nil {
					return nil, err
				}
				p.Mailboxes[i] = n
			}
			slices.Sort(p.Groups)
			slices.Sort(p.Mailboxes)
			return json.Marshal(p)
		},
		Present: directory.PresentAs(PolicyOf),
	}
}

// CalendarSettingKind tells the directory how to check a business calendar.
func CalendarSettingKind() directory.SettingKind {
	return directory.SettingKind{
		Kind: CalendarKind,
		Validate: func(_ context.Context, id string, body []byte) ([]byte, error) {
			const op = "sla.Calendar"
			var c CalendarSetting
			if err := directory.Decode(op, body, &c); err != nil {
				return nil, err
			}
			if c.ID != "" && c.ID != id {
				return nil, fault.InvalidField(op, "id", "%q differs from the calendar %q it is set on", c.ID, id)
			}
			c.ID, c.Meta = id, directory.Meta{}
			compiled, err := c.Calendar.Compile()
			if err != nil {
				return nil, err
			}
			c.Calendar = compiled.Calendar()
			return json.Marshal(c)
		},
		Present: directory.PresentAs(CalendarOf),
	}
}

// PolicyOf reads a stored policy.
func PolicyOf(s directory.Setting) (Policy, error) {
	var p Policy
	if err := json.Unmarshal(s.Body, &p); err != nil {
		return Policy{}, fault.Wrap(fault.Internal, "sla.PolicyOf", err)
	}
	p.ID, p.Meta = s.ID, s.Meta
	return p, nil
}

// CalendarOf reads a stored calendar.
func CalendarOf(s directory.Setting) (CalendarSetting, error) {
	var c CalendarSetting
	if err := json.Unmarshal(s.Body, &c); err != nil {
		return CalendarSetting{}, fault.Wrap(fault.Internal, "sla.CalendarOf", err)
	}
	c.ID, c.Meta = s.ID, s.Meta
	return c, nil
}

// Settings reads policies and calendars: directory.SettingStore satisfies it.
type Settings interface {
	Settings(ctx context.Context, kind string) ([]directory.Setting, int64, error)
	Setting(ctx context.Context, kind, id string) (directory.Setting, error)
}

// Policies finds the policy of a queue and its calendar, reading the policies once per call.
type Policies struct{ Settings Settings }

// ForQueue returns the policy that applies to a group or mailbox queue ("group:support",
// "mailbox:ana@example.com"), or ok false. named, a routing rule's choice, wins when set.
func (ps Policies) ForQueue(ctx context.Context, queue, named string) (Policy, bool, error) {
	if named != "" {
		s, err := ps.Settings.Setting(ctx, PolicyKind, named)
		if fault.Is(err, fault.NotFound) {
			return Policy{}, false, nil
		}
		if err != nil {
			return Policy{}, false, err
		}
		p, err := PolicyOf(s)
		return p, err == nil, err
	}
	settings, _, err := ps.Settings.Settings(ctx, PolicyKind)
	if err != nil {
		return Policy{}, false, err
	}
	kind, id := splitQueue(queue)
	for _, s := range settings {
		p, err := PolicyOf(s)
		if err != nil {
			return Policy{}, false, err
		}
		if kind == directory.KindGroup && slices.Contains(p.Groups, id) || kind == directory.KindMailbox && slices.Contains(p.Mailboxes, id) {
			return p, true, nil
		}
	}
	return Policy{}, false, nil
}

// Policy reads one policy by id.
func (ps Policies) Policy(ctx context.Context, id string) (Policy, error) {
	s, err := ps.Settings.Setting(ctx, PolicyKind, id)
	if err != nil {
		return Policy{}, err
	}
	return PolicyOf(s)
}

// Calendar compiles a policy's calendar.
func (ps Policies) Calendar(ctx context.Context, p Policy) (*calendar.Compiled, error) {
	cal := calendar.Default()
	if p.Calendar != "" {
		s, err := ps.Settings.Setting(ctx, CalendarKind, p.Calendar)
		if err != nil && !fault.Is(err, fault.NotFound) {
			return nil, err
		}
		if err == nil {
			c, err := CalendarOf(s)
			if err != nil {
				return nil, err
			}
			cal = c.Calendar
		}
	}
	compiled, err := cal.Compile()
	if err != nil {
		var f *fault.Error
		if errors.As(err, &f) {
			// Checked when stored: a calendar that no longer compiles is Mailroom's bug.
			return nil, fault.Wrap(fault.Internal, "sla.Calendar", err)
		}
		return nil, err
	}
	return compiled, nil
}

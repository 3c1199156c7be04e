package retention

import (
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/mail"
)

// Day is how long a retention day is: 24 hours from the time of receipt, in UTC.
const Day = 24 * time.Hour

// Verdict is what retention decides for one message at one moment.
type Verdict struct {
	// Delete is true when the message is past its longest applicable policy and no active hold
	// covers it.
	Delete bool `json:"delete"`
	// Policy is the id of the longest applicable policy, which decides; empty when none applies
	// (the message is kept).
	Policy string `json:"policy,omitempty"`
	// Forever is true when that policy keeps the message forever.
	Forever bool `json:"forever,omitempty"`
	// KeepDays and KeepUntil are that policy's days and when they run out; zero when Forever or
	// when no policy applies.
	KeepDays  int       `json:"keepDays,omitempty"`
	KeepUntil time.Time `json:"keepUntil,omitzero"`
	// HeldBy are the ids of the active holds that cover the message, sorted.
	HeldBy []string `json:"heldBy,omitempty"`
}

// Decide says whether rec may be destroyed at now. The longest applicable policy wins (forever
// beats any number of days; between equals the smaller id, so the answer is stable); a message no
// policy applies to is kept, so that only a policy someone wrote destroys mail; and any active
// hold that covers the message keeps it.
func Decide(rec archive.Record, policies []Policy, holds []Hold, now time.Time) Verdict {
	m := facts(rec)
	var v Verdict
	var best *Policy
	for i := range policies {
		p := &policies[i]
		if !m.inScope(p.Scope) {
			continue
		}
		if best == nil || longer(p, best) {
			best = p
		}
	}
	for _, h := range holds {
		if h.Active(now) && m.held(h.Scope) {
			v.HeldBy = append(v.HeldBy, h.ID)
		}
	}
	slices.Sort(v.HeldBy)
	if best == nil {
		return v
	}
	v.Policy, v.Forever = best.ID, best.Forever
	if !best.Forever {
		v.KeepDays = best.KeepDays
		v.KeepUntil = rec.ReceivedAt.UTC().Add(time.Duration(best.KeepDays) * Day)
		v.Delete = !now.Before(v.KeepUntil) && len(v.HeldBy) == 0
	}
	return v
}

// longer reports whether p keeps mail longer than q, or as long with the smaller id.
func longer(p, q *Policy) bool {
	switch {
	case p.Forever != q.Forever:
		return p.Forever
	case p.Forever || p.KeepDays == q.KeepDays:
		return p.ID < q.ID
	}
	return p.KeepDays > q.KeepDays
}

// message is what scopes are matched against, read from a record once.
type message struct {
	rec        archive.Record
	recipients []string // envelope recipients, To and Cc
	senders    []string // envelope sender and From
	groups     []string
	labels     []string
}

func facts(rec archive.Record) message {
	m := message{rec: rec}
	for _, a := range rec.Recipients {
		m.recipients = append(m.recipients, strings.ToLower(strings.TrimSpace(a)))
	}
	for _, as := range [][]string{addresses(rec.To), addresses(rec.Cc)} {
		m.recipients = append(m.recipients, as...)
	}
	if rec.EnvelopeFrom != "" {
		m.senders = append(m.senders, strings.ToLower(strings.TrimSpace(rec.EnvelopeFrom)))
	}
	m.senders = append(m.senders, addresses(rec.From)...)
	for _, g := range rec.Groups {
		m.groups = append(m.groups, strings.ToLower(g))
	}
	for _, l := range rec.Labels {
		m.labels = append(m.labels, strings.ToLower(strings.TrimSpace(l)))
	}
	return m
}

func addresses(as []mail.Address) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		if addr := strings.ToLower(strings.TrimSpace(a.Address)); addr != "" {
			out = append(out, addr)
		}
	}
	return out
}

// inScope reports whether a policy scope covers the message.
func (m message) inScope(s Scope) bool {
	switch s.Kind {
	case ScopeDomain:
		return anyOn(m.recipients, s.Value) || anyOn(m.senders, s.Value)
	case ScopeMailbox:
		return slices.Contains(m.recipients, s.Value) || slices.Contains(m.senders, s.Value)
	case ScopeGroup:
		return slices.Contains(m.groups, s.Value)
	case ScopeLabel:
		return slices.Contains(m.labels, s.Value)
	}
	return false
}

// held reports whether a hold scope covers the message. It errs on the side of holding: an
// address or domain matches wherever it appears.
func (m message) held(s Scope) bool {
	switch s.Kind {
	case ScopeMailbox, ScopeGroup, ScopeLabel:
		return m.inScope(s)
	case ScopeSender:
		return matchAny(m.senders, s.Value)
	case ScopeQuery:
		q := s.Query
		if q == nil {
			return false
		}
		if q.Sender != "" && !matchAny(m.senders, q.Sender) {
			return false
		}
		if q.Recipient != "" && !matchAny(m.recipients, q.Recipient) {
			return false
		}
		at := m.rec.ReceivedAt
		if !q.From.IsZero() && at.Before(q.From) || !q.To.IsZero() && at.After(q.To) {
			return false
		}
		subject := strings.ToLower(m.rec.Subject)
		for _, w := range subjectWords(q.Subject) {
			if !strings.Contains(subject, w) {
				return false
			}
		}
		return true
	}
	return false
}

// matchAny matches an address exactly, or a domain against every address on it.
func matchAny(addrs []string, v string) bool {
	if strings.Contains(v, "@") {
		return slices.Contains(addrs, v)
	}
	return anyOn(addrs, v)
}

func anyOn(addrs []string, domain string) bool {
	for _, a := range addrs {
		if at := strings.LastIndexByte(a, '@'); at >= 0 && a[at+1:] == domain {
			return true
		}
	}
	return false
}

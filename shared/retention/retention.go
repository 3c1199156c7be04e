// Package retention decides how long archived mail is kept and destroys what has outlived it:
// retention policies (keep N days, or forever) by domain, mailbox, group or label, legal holds
// that keep mail whatever the policies say, and the resumable job that finds expired messages by
// index, deletes them and records each destruction.
package retention

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// Setting kinds: the directory stores, versions and audits policies and holds.
const (
	PolicyKind = "retention-policy"
	HoldKind   = "legal-hold"
)

// Scope kinds. Policies apply by domain, mailbox, group or label; holds by mailbox, group,
// label, sender or query (a search).
const (
	ScopeDomain  = "domain"
	ScopeMailbox = "mailbox"
	ScopeGroup   = "group"
	ScopeLabel   = "label"
	ScopeSender  = "sender"
	ScopeQuery   = "query"
)

// Bounds.
const (
	// MaxKeepDays is a century: longer is "forever".
	MaxKeepDays = 36500
	maxName     = 200
	maxReason   = 1000
	maxLabel    = 64
	maxWords    = 10
	maxWordLen  = 200
)

// Scope is what a policy or hold covers. A message concerns a mailbox when the mailbox's address
// is one of its envelope recipients, its envelope sender, or in its From, To or Cc; a domain when
// one of those addresses is on it; a group when it was delivered through the group
// (archive.Record.Groups); a label when routing gave it the label (in any case).
type Scope struct {
	Kind string `json:"kind"`
	// Value is the domain, address, group id, label or sender (an address, or a domain for
	// every sender on it); empty for a query.
	Value string `json:"value,omitempty"`
	// Query is the search a query hold covers; only for Kind query.
	Query *Query `json:"query,omitempty"`
}

// Query is a search, with the archive search's criteria of the same names: every given criterion
// must match. A hold on a query covers at least every message that search finds: Sender matches
// any From address or the envelope sender, Recipient any envelope recipient, To or Cc address
// (each an address, or a domain for every address on it); From and To bound the time of receipt,
// both included; Subject is words that must all appear in the subject, in any case.
type Query struct {
	Sender    string    `json:"sender,omitempty"`
	Recipient string    `json:"recipient,omitempty"`
	From      time.Time `json:"from,omitzero"`
	To        time.Time `json:"to,omitzero"`
	Subject   string    `json:"subject,omitempty"`
}

// Policy says how long the mail in its scope is kept: KeepDays days after receipt, or Forever.
// Where several policies apply to a message the longest wins, and forever beats any number. A
// message no policy applies to is kept: destruction needs a policy that asks for it.
type Policy struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Scope    Scope  `json:"scope"`
	KeepDays int    `json:"keepDays,omitempty"`
	Forever  bool   `json:"forever,omitempty"`
	directory.Meta
}

// Hold keeps every message in its scope from destruction, whatever the policies say, from when it
// is placed until ReleasedAt. A hold is released, never deleted, so that the reports and
// destruction records that name it keep their meaning; its placement is CreatedAt.
type Hold struct {
	ID     string `json:"id"`
	Scope  Scope  `json:"scope"`
	Reason string `json:"reason"`
	// Owner is who answers for the hold: an address.
	Owner      string    `json:"owner"`
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
	directory.Meta
}

// Active reports whether the hold keeps mail at t.
func (h Hold) Active(t time.Time) bool { return h.ReleasedAt.IsZero() || t.Before(h.ReleasedAt) }

var (
	settingID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$`)
	groupID   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`)
)

// PolicySetting tells the directory how to check a retention policy. Admins change policies;
// admins and auditors read them.
func PolicySetting() directory.SettingKind {
	return directory.SettingKind{
		Kind: PolicyKind,
		Validate: func(_ context.Context, id string, body []byte) ([]byte, error) {
			const op = "retention.Policy"
			var p Policy
			if err := directory.Decode(op, body, &p); err != nil {
				return nil, err
			}
			if err := checkID(op, id, p.ID); err != nil {
				return nil, err
			}
			p.ID, p.Meta = id, directory.Meta{}
			if err := checkName(op, &p.Name, id); err != nil {
				return nil, err
			}
			switch p.Scope.Kind {
			case ScopeDomain, ScopeMailbox, ScopeGroup, ScopeLabel:
			default:
				return nil, fault.InvalidField(op, "scope.kind", "must be domain, mailbox, group or label, not %q", p.Scope.Kind)
			}
			if p.Scope.Query != nil {
				return nil, fault.InvalidField(op, "scope.query", "only a legal hold covers a query")
			}
			v, err := normalizeValue(p.Scope.Kind, p.Scope.Value)
			if err != nil {
				return nil, fault.InvalidField(op, "scope.value", "%v", err)
			}
			p.Scope.Value = v
			switch {
			case p.Forever && p.KeepDays != 0:
				return nil, fault.InvalidField(op, "keepDays", "give keepDays or forever, not both")
			case !p.Forever && (p.KeepDays < 1 || p.KeepDays > MaxKeepDays):
				return nil, fault.InvalidField(op, "keepDays", "must be from 1 to %d days, or set forever", MaxKeepDays)
			}
			return json.Marshal(p)
		},
		Present: directory.PresentAs(PolicyOf),
	}
}

// HoldSetting tells the directory how to check a legal hold. Admins place, change and release
// holds; admins and auditors read them; nobody deletes one (release it instead).
func HoldSetting() directory.SettingKind {
	return directory.SettingKind{
		Kind: HoldKind,
		Validate: func(_ context.Context, id string, body []byte) ([]byte, error) {
			const op = "retention.Hold"
			var h Hold
			if err := directory.Decode(op, body, &h); err != nil {
				return nil, err
			}
			if err := checkID(op, id, h.ID); err != nil {
				return nil, err
			}
			h.ID, h.Meta = id, directory.Meta{}
			switch h.Scope.Kind {
			case ScopeMailbox, ScopeGroup, ScopeLabel, ScopeSender:
				if h.Scope.Query != nil {
					return nil, fault.InvalidField(op, "scope.query", "only a scope of kind query has a query")
				}
				v, err := normalizeValue(h.Scope.Kind, h.Scope.Value)
				if err != nil {
					return nil, fault.InvalidField(op, "scope.value", "%v", err)
				}
				h.Scope.Value = v
			case ScopeQuery:
				if h.Scope.Value != "" {
					return nil, fault.InvalidField(op, "scope.value", "a query hold gives its criteria in scope.query")
				}
				q, err := checkQuery(op, h.Scope.Query)
				if err != nil {
					return nil, err
				}
				h.Scope.Query = q
			default:
				return nil, fault.InvalidField(op, "scope.kind", "must be mailbox, group, label, sender or query, not %q", h.Scope.Kind)
			}
			h.Reason = strings.TrimSpace(h.Reason)
			if h.Reason == "" {
				return nil, fault.InvalidField(op, "reason", "is required: say why the mail is held (a matter, a case number)")
			}
			if err := checkText(h.Reason, maxReason); err != nil {
				return nil, fault.InvalidField(op, "reason", "%v", err)
			}
			owner, err := directory.NormalizeAddress(h.Owner)
			if err != nil {
				return nil, fault.InvalidField(op, "owner", "must be the address of who answers for the hold: %v", err)
			}
			h.Owner = owner
			h.ReleasedAt = h.ReleasedAt.UTC()
			return json.Marshal(h)
		},
		Present: directory.PresentAs(HoldOf),
		Access: func(_ context.Context, p directory.Principal, op, _ string, write bool) error {
			if op == "directory.DeleteSetting" {
				return fault.New(fault.Forbidden, op, "a legal hold is released (set releasedAt), never deleted")
			}
			if write {
				return p.Allow(op, true, directory.RoleAdmin)
			}
			return p.Allow(op, false, directory.RoleAdmin, directory.RoleAuditor)
		},
	}
}

// PolicyOf reads a stored policy.
func PolicyOf(s directory.Setting) (Policy, error) {
	var p Policy
	if err := json.Unmarshal(s.Body, &p); err != nil {
		return Policy{}, fault.Wrap(fault.Internal, "retention.PolicyOf", err)
	}
	p.ID, p.Meta = s.ID, s.Meta
	return p, nil
}

// HoldOf reads a stored hold.
func HoldOf(s directory.Setting) (Hold, error) {
	var h Hold
	if err := json.Unmarshal(s.Body, &h); err != nil {
		return Hold{}, fault.Wrap(fault.Internal, "retention.HoldOf", err)
	}
	h.ID, h.Meta = s.ID, s.Meta
	return h, nil
}

func checkID(op, id, inBody string) error {
	if !settingID.MatchString(id) {
		return fault.InvalidField(op, "id", "%q is not an id: letters, digits, '.', '_' and '-', at most 128", id)
	}
	if inBody != "" && inBody != id {
		return fault.InvalidField(op, "id", "%q differs from the id %q it is set on", inBody, id)
	}
	return nil
}

func checkName(op string, name *string, id string) error {
	*name = strings.TrimSpace(*name)
	if *name == "" {
		*name = id
	}
	if err := checkText(*name, maxName); err != nil {
		return fault.InvalidField(op, "name", "%v", err)
	}
	return nil
}

// checkText accepts printable text on one line of at most max characters.
func checkText(s string, max int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("is %d characters long; at most %d", n, max)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("contains the unprintable character %U (one line of text)", r)
		}
	}
	return nil
}

// normalizeValue checks a scope's value for its kind and returns it in the form messages are
// compared in: addresses and domains lower case with domains in ASCII, labels lower case.
func normalizeValue(kind, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("is required for a %s scope", kind)
	}
	switch kind {
	case ScopeDomain:
		d, _, err := directory.NormalizeDomain(v)
		return d, err
	case ScopeMailbox:
		return directory.NormalizeAddress(v)
	case ScopeSender:
		return addressOrDomain(v)
	case ScopeGroup:
		if !groupID.MatchString(v) {
			return "", fmt.Errorf("%q is not a group id (lower-case letters, digits and '-')", v)
		}
		return v, nil
	case ScopeLabel:
		if n := utf8.RuneCountInString(v); n > maxLabel {
			return "", fmt.Errorf("is %d characters long; at most %d", n, maxLabel)
		}
		for _, r := range v {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(" _./:-", r)) {
				return "", fmt.Errorf("has %q: labels use letters A-Z, digits, spaces and _ . / : -", r)
			}
		}
		return strings.ToLower(v), nil
	}
	return "", fmt.Errorf("unknown scope kind %q", kind)
}

// addressOrDomain normalises an address, or a domain when v has no '@'.
func addressOrDomain(v string) (string, error) {
	if strings.Contains(v, "@") {
		return directory.NormalizeAddress(v)
	}
	d, _, err := directory.NormalizeDomain(v)
	if err != nil {
		return "", fmt.Errorf("must be an address, or a domain for every address on it: %v", err)
	}
	return d, nil
}

func checkQuery(op string, q *Query) (*Query, error) {
	if q == nil {
		return nil, fault.InvalidField(op, "scope.query", "is required for a query hold")
	}
	out := *q
	var err error
	if out.Sender = strings.TrimSpace(out.Sender); out.Sender != "" {
		if out.Sender, err = addressOrDomain(out.Sender); err != nil {
			return nil, fault.InvalidField(op, "scope.query.sender", "%v", err)
		}
	}
	if out.Recipient = strings.TrimSpace(out.Recipient); out.Recipient != "" {
		if out.Recipient, err = addressOrDomain(out.Recipient); err != nil {
			return nil, fault.InvalidField(op, "scope.query.recipient", "%v", err)
		}
	}
	out.From, out.To = out.From.UTC(), out.To.UTC()
	if !out.From.IsZero() && !out.To.IsZero() && out.To.Before(out.From) {
		return nil, fault.InvalidField(op, "scope.query.to", "is before from")
	}
	words := subjectWords(out.Subject)
	if len(words) > maxWords {
		return nil, fault.InvalidField(op, "scope.query.subject", "at most %d words", maxWords)
	}
	for _, w := range words {
		if len(w) > maxWordLen {
			return nil, fault.InvalidField(op, "scope.query.subject", "a word is longer than %d bytes", maxWordLen)
		}
	}
	out.Subject = strings.Join(words, " ")
	if out.Sender == "" && out.Recipient == "" && out.From.IsZero() && out.To.IsZero() && out.Subject == "" {
		return nil, fault.InvalidField(op, "scope.query", "give at least one of sender, recipient, from, to and subject")
	}
	return &out, nil
}

// subjectWords are the words of a subject criterion as the archive search reads them: whatever
// lies between spaces, lower case.
func subjectWords(s string) []string { return strings.Fields(strings.ToLower(s)) }

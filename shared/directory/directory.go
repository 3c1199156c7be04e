// Package directory is Mailroom's directory: the domains it serves, the mailboxes, aliases and
// groups on them, who may change them, and the audit log of every change. Routing, auto-replies and
// SLA tracking read it; the admin API writes it through Service, which checks the caller's roles,
// validates input and records each change in the same atomic write as the change itself.
package directory

import (
	"encoding/json"
	"time"
)

// Meta is what every stored resource carries. Version starts at 1 and grows by one on every change;
// writes are conditional on it (the API's ETag).
type Meta struct {
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Unknown-recipient policies of a domain.
const (
	UnknownBounce   = "bounce"
	UnknownDrop     = "drop"
	UnknownCatchAll = "catch-all"
)

// Domain is a mail domain Mailroom receives for.
type Domain struct {
	// Name is the ASCII (punycode) form, lower-case.
	Name string `json:"name"`
	// UnicodeName is Name for people; filled in by Mailroom.
	UnicodeName string `json:"unicodeName,omitempty"`
	// UnknownRecipients says what happens to mail for an address nobody owns.
	UnknownRecipients string `json:"unknownRecipients"`
	// CatchAll receives mail for unknown addresses when UnknownRecipients is catch-all.
	CatchAll string `json:"catchAll,omitempty"`
	Meta
}

// Mailbox statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusClosed    = "closed"
)

// Mailbox is a person's (or a function's) address on a served domain.
type Mailbox struct {
	Address     string   `json:"address"`
	DisplayName string   `json:"displayName,omitempty"`
	ForwardTo   []string `json:"forwardTo,omitempty"`
	Status      string   `json:"status"`
	Manager     string   `json:"manager,omitempty"`
	Locale      string   `json:"locale"`
	TimeZone    string   `json:"timeZone"`
	Meta
}

// Kinds of things an address or a reference can point at.
const (
	KindDomain   = "domain"
	KindMailbox  = "mailbox"
	KindAlias    = "alias"
	KindGroup    = "group"
	KindExternal = "external"
)

// Alias is another address for a mailbox or a group.
type Alias struct {
	Address string `json:"address"`
	// Target is the address of a mailbox or a group.
	Target string `json:"target"`
	// TargetKind is KindMailbox or KindGroup; filled in by Mailroom.
	TargetKind string `json:"targetKind,omitempty"`
	// TargetID is the mailbox address or the group id the target address belongs to.
	TargetID string `json:"-"`
	Meta
}

// Group types.
var GroupTypes = []string{"department", "project", "role", "customer", "region", "other"}

// Posting policies: who may send to a group.
const (
	PostAnyone       = "anyone"
	PostOrganisation = "organisation"
	PostMembers      = "members"
	PostAllowList    = "allow-list"
	PostModerated    = "moderated"
)

// PostingPolicies lists the posting policies in the order the API documents them.
var PostingPolicies = []string{PostAnyone, PostOrganisation, PostMembers, PostAllowList, PostModerated}

// Posting is a group's posting policy.
type Posting struct {
	Policy string `json:"policy"`
	// Allow holds addresses and "@domain" entries, for the allow-list policy.
	Allow []string `json:"allow,omitempty"`
	// Moderators are mailboxes that approve held mail; the owners when empty.
	Moderators []string `json:"moderators,omitempty"`
}

// Group is a set of mailboxes, external addresses and other groups with addresses of its own.
type Group struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Type        string   `json:"type"`
	Addresses   []string `json:"addresses,omitempty"`
	Owners      []string `json:"owners,omitempty"`
	Posting     Posting  `json:"posting"`
	// Expires is the last day the group exists (YYYY-MM-DD), for project groups.
	Expires     string `json:"expires,omitempty"`
	MemberCount int    `json:"memberCount"`
	Meta
}

// Member is one entry of a group: a mailbox, an external address or another group.
type Member struct {
	Kind    string `json:"kind"`
	Address string `json:"address,omitempty"`
	Group   string `json:"group,omitempty"`
	// Status is the mailbox's status, kept on the membership so that expanding a group does not
	// read every mailbox in it.
	Status string `json:"status,omitempty"`
	// ForwardTo is the mailbox's forwarding destinations, kept for the same reason.
	ForwardTo []string `json:"-"`
}

// Ref names the member: "mailbox:ana@example.com", "group:sales".
func (m Member) Ref() string {
	if m.Kind == KindGroup {
		return KindGroup + ":" + m.Group
	}
	return m.Kind + ":" + m.Address
}

// Expansion is a group's deduplicated final addresses, through nested groups.
type Expansion struct {
	Group     string    `json:"group"`
	Addresses []string  `json:"addresses"`
	Groups    []string  `json:"groups"`
	Skipped   []Skipped `json:"skipped"`
}

// Skipped is a member left out of an expansion, and why.
type Skipped struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// Page asks for one page of a listing.
type Page struct {
	Limit  int
	Cursor string
}

// Owner is what an address belongs to.
type Owner struct {
	Kind string // KindMailbox, KindAlias or KindGroup
	ID   string // mailbox or alias address, or group id
}

// Actor is who made a change, as the audit log records it.
type Actor struct {
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Roles   []string `json:"roles"`
}

// AuditEntry records one change.
type AuditEntry struct {
	ID        string          `json:"id"`
	At        time.Time       `json:"at"`
	Actor     Actor           `json:"actor"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
	RequestID string          `json:"requestId,omitempty"`
}

// AuditQuery selects audit entries: a time range and at most one of Actor and Resource.
type AuditQuery struct {
	From, To time.Time
	Actor    string
	Resource string
}

// Replay is a remembered answer to a request made with an Idempotency-Key.
type Replay struct {
	Key         string            `json:"key"`
	Fingerprint string            `json:"fingerprint"`
	Status      int               `json:"status"`
	Header      map[string]string `json:"header,omitempty"`
	Body        []byte            `json:"body,omitempty"`
	Expires     time.Time         `json:"expires"`
}

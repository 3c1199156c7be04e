package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// Service is the directory's operations, each checked against the caller's roles, validated, and
// audited in the same atomic write as the change.
type Service struct {
	Store Store
	Audit AuditLog
	Now   func() time.Time
	// NewID names audit entries.
	NewID func() string
}

// Call is what every operation needs to know about the request making it.
type Call struct {
	Principal Principal
	RequestID string
	// IfMatch is the version the caller last saw; 0 when they did not say.
	IfMatch int64
	// Idempotency, when set, makes a create remember its answer in the same write.
	Idempotency *Idempotency
}

// internal is the call for a change made on the way to the one asked for (leaving groups before a
// delete): the caller's If-Match and idempotency key belong to the change asked for.
func (c Call) internal() Call {
	c.IfMatch, c.Idempotency = 0, nil
	return c
}

// Idempotency carries a request's Idempotency-Key and a way to render the answer to remember.
type Idempotency struct {
	Key         string
	Fingerprint string
	Render      func(result any) Replay
}

// ErrReplay is the cause of a Conflict when the idempotency key of a call was used by a request
// that finished first: the caller should answer with the remembered Replay.
var ErrReplay = errors.New("idempotency key already used")

// raceRetries is how often a write without If-Match is retried after losing a race.
const raceRetries = 4

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errRace marks a write that lost a race for a version it did not name; the service retries it.
var errRace = errors.New("concurrent change")

// commit applies ms plus the audit entry (and the idempotent answer) as one write.
func (s *Service) commit(ctx context.Context, c Call, op, action, resource string, before, after any, ms ...Mutation) error {
	ms = append(ms, Record{Entry: AuditEntry{
		ID: s.newID(), At: s.now(), Actor: c.Principal.Actor(), Action: action, Resource: resource,
		Before: marshal(before), After: marshal(after), RequestID: c.RequestID,
	}})
	if c.Idempotency != nil {
		r := c.Idempotency.Render(after)
		r.Key, r.Fingerprint = c.Idempotency.Key, c.Idempotency.Fingerprint
		r.Expires = s.now().Add(24 * time.Hour)
		// First, because a failed Apply names only its first failed condition: a request repeated
		// while the first was running also fails on the resource the first created, and must
		// learn that its key was used, not that the resource exists.
		ms = append([]Mutation{Remember{Replay: r}}, ms...)
	}
	if len(ms) > MaxMutations {
		return fault.New(fault.Conflict, op, "this change touches too many items at once (%d); make it in smaller steps", len(ms))
	}
	err := s.Store.Apply(ctx, ms...)
	var cf *ConditionFailed
	if err == nil || !errors.As(err, &cf) || cf.Index >= len(ms) {
		return err
	}
	switch m := ms[cf.Index].(type) {
	case Remember:
		return &fault.Error{Kind: fault.Conflict, Op: op, Message: "the idempotency key was used by another request", Err: ErrReplay}
	case ClaimAddress:
		return &fault.Error{Kind: fault.Conflict, Op: op, Message: fmt.Sprintf("%s is already in use", m.Address), Err: err}
	case PutDomain, PutMailbox, PutAlias, PutGroup:
		if expectOf(m) == 0 {
			return &fault.Error{Kind: fault.Conflict, Op: op, Message: fmt.Sprintf("%s already exists", resource), Err: err}
		}
	case BumpGraph:
		// The group graph moved, not the resource the caller's If-Match names: read both again.
		return fmt.Errorf("%w: %w", errRace, err)
	}
	if c.IfMatch != 0 {
		return &fault.Error{Kind: fault.Stale, Op: op, Message: fmt.Sprintf("%s was changed by someone else", resource), Err: err}
	}
	return fmt.Errorf("%w: %w", errRace, err)
}

func expectOf(m Mutation) int64 {
	switch m := m.(type) {
	case PutDomain:
		return m.Expect
	case PutMailbox:
		return m.Expect
	case PutAlias:
		return m.Expect
	case PutGroup:
		return m.Expect
	}
	return Any
}

// retry runs a read-modify-write until it does not lose a race, a few times at most.
func retry(op string, f func() error) error {
	var err error
	for range raceRetries {
		if err = f(); !errors.Is(err, errRace) {
			return err
		}
	}
	return fault.New(fault.Conflict, op, "too many concurrent changes; try again")
}

// checkVersion compares the caller's If-Match with the stored version.
func checkVersion(op string, c Call, resource string, version int64) error {
	if c.IfMatch != 0 && c.IfMatch != version {
		return fault.New(fault.Stale, op, "%s is at version %d, not %d", resource, version, c.IfMatch)
	}
	return nil
}

func stamp(m *Meta, before Meta, now time.Time) {
	if before.Version == 0 {
		m.CreatedAt = now
	} else {
		m.CreatedAt = before.CreatedAt
	}
	m.Version = before.Version + 1
	m.UpdatedAt = now
}

// served checks that an address is on a domain Mailroom serves.
func (s *Service) served(ctx context.Context, op, field, addr string) error {
	_, err := s.Store.Domain(ctx, DomainOf(addr))
	if fault.Is(err, fault.NotFound) {
		return fault.InvalidField(op, field, "%s is not a Mailroom domain; add the domain first", DomainOf(addr))
	}
	return err
}

// isServed reports whether an address is on a domain Mailroom serves.
func (s *Service) isServed(ctx context.Context, addr string) (bool, error) {
	_, err := s.Store.Domain(ctx, DomainOf(addr))
	if fault.Is(err, fault.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// mailboxRef checks that an address names an existing mailbox.
func (s *Service) mailboxRef(ctx context.Context, op, field, addr string) (Mailbox, error) {
	m, err := s.Store.Mailbox(ctx, addr)
	if fault.Is(err, fault.NotFound) {
		return Mailbox{}, fault.InvalidField(op, field, "%s is not a mailbox", addr)
	}
	return m, err
}

func (s *Service) mailboxRefs(ctx context.Context, op, field string, addrs []string) error {
	for i, a := range addrs {
		if _, err := s.mailboxRef(ctx, op, fmt.Sprintf("%s.%d", field, i), a); err != nil {
			return err
		}
	}
	return nil
}

// Me returns the caller as Mailroom sees them.
func (s *Service) Me(c Call) Principal { return c.Principal }

func checkPage(op string, p Page) error {
	if p.Limit < 0 || p.Limit > 1000 {
		return fault.InvalidField(op, "limit", "must be between 1 and 1000")
	}
	return nil
}

func page(p Page) Page {
	if p.Limit == 0 {
		p.Limit = 100
	}
	return p
}

// diff returns what is in b but not in a.
func diff(a, b []string) []string {
	var out []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

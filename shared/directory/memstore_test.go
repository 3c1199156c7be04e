package directory

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// memStore is an in-memory Store and AuditLog for the service's unit tests. It keeps the
// semantics the service relies on — atomic, conditional Apply; ordered pages with opaque cursors;
// NotFound for missing items — and nothing else. Storage details are tested against DynamoDB in
// shared/dynamo.
type memStore struct {
	mu  sync.Mutex
	now func() time.Time

	domains   map[string]Domain
	mailboxes map[string]Mailbox
	aliases   map[string]Alias
	groups    map[string]Group
	members   map[string]map[string]Member // group id → member ref → member
	owners    map[string]map[string]bool   // owner address → group ids
	claims    map[string]Owner             // served address → what it belongs to
	graph     int64
	replays   map[string]Replay
	audit     []AuditEntry

	// calls counts the calls of each method.
	calls map[string]int
	// applied holds the mutations of every successful Apply, in order.
	applied [][]Mutation
	// beforeApply, when set, runs at the start of every Apply, before the store is locked: tests
	// use it to make a concurrent change between the service's read and its write.
	beforeApply func()
}

var (
	_ Store    = (*memStore)(nil)
	_ AuditLog = (*memStore)(nil)
)

func newMemStore(now func() time.Time) *memStore {
	return &memStore{
		now:       now,
		domains:   map[string]Domain{},
		mailboxes: map[string]Mailbox{},
		aliases:   map[string]Alias{},
		groups:    map[string]Group{},
		members:   map[string]map[string]Member{},
		owners:    map[string]map[string]bool{},
		claims:    map[string]Owner{},
		replays:   map[string]Replay{},
		calls:     map[string]int{},
	}
}

// call counts a call of method and locks the store; the caller unlocks it.
func (s *memStore) call(method string) {
	s.mu.Lock()
	s.calls[method]++
}

// callCount returns how often method was called.
func (s *memStore) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *memStore) resetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
}

func notFound(op, what, id string) error {
	return fault.New(fault.NotFound, "memStore."+op, "no %s %q", what, id)
}

// Values are copied in and out so that neither the service nor a test can change what is stored
// by keeping a slice it was given.

func cloneMailbox(m Mailbox) Mailbox {
	m.ForwardTo = slices.Clone(m.ForwardTo)
	return m
}

func cloneGroup(g Group) Group {
	g.Addresses = slices.Clone(g.Addresses)
	g.Owners = slices.Clone(g.Owners)
	g.Posting.Allow = slices.Clone(g.Posting.Allow)
	g.Posting.Moderators = slices.Clone(g.Posting.Moderators)
	return g
}

func cloneMember(m Member) Member {
	m.ForwardTo = slices.Clone(m.ForwardTo)
	return m
}

func (s *memStore) Domain(_ context.Context, name string) (Domain, error) {
	s.call("Domain")
	defer s.mu.Unlock()
	d, ok := s.domains[name]
	if !ok {
		return Domain{}, notFound("Domain", "domain", name)
	}
	return d, nil
}

func (s *memStore) Mailbox(_ context.Context, address string) (Mailbox, error) {
	s.call("Mailbox")
	defer s.mu.Unlock()
	m, ok := s.mailboxes[address]
	if !ok {
		return Mailbox{}, notFound("Mailbox", "mailbox", address)
	}
	return cloneMailbox(m), nil
}

func (s *memStore) Alias(_ context.Context, address string) (Alias, error) {
	s.call("Alias")
	defer s.mu.Unlock()
	a, ok := s.aliases[address]
	if !ok {
		return Alias{}, notFound("Alias", "alias", address)
	}
	return a, nil
}

func (s *memStore) Group(_ context.Context, id string) (Group, error) {
	s.call("Group")
	defer s.mu.Unlock()
	g, ok := s.groups[id]
	if !ok {
		return Group{}, notFound("Group", "group", id)
	}
	return cloneGroup(g), nil
}

func (s *memStore) AddressOwner(_ context.Context, address string) (Owner, error) {
	s.call("AddressOwner")
	defer s.mu.Unlock()
	o, ok := s.claims[address]
	if !ok {
		return Owner{}, notFound("AddressOwner", "owner of", address)
	}
	return o, nil
}

// paginate returns one page of items, which are in listing order, as keys give it. The cursor
// is the key of the first item of the next page; desc says the keys descend.
func paginate[T any](op string, keys []string, items []T, p Page, desc bool) ([]T, string, error) {
	start := 0
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil {
			return nil, "", fault.InvalidField("memStore."+op, "cursor", "not a cursor")
		}
		cur := string(b)
		start = len(keys)
		for i, k := range keys {
			if (!desc && k >= cur) || (desc && k <= cur) {
				start = i
				break
			}
		}
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	end := min(start+limit, len(items))
	out := slices.Clone(items[start:end])
	if out == nil {
		out = []T{}
	}
	if end < len(items) {
		return out, base64.RawURLEncoding.EncodeToString([]byte(keys[end])), nil
	}
	return out, "", nil
}

// sortedValues returns a map's keys in order and its values in the same order.
func sortedValues[T any](m map[string]T, clone func(T) T) ([]string, []T) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]T, len(keys))
	for i, k := range keys {
		vals[i] = clone(m[k])
	}
	return keys, vals
}

func same[T any](v T) T { return v }

func (s *memStore) Domains(_ context.Context, p Page) ([]Domain, string, error) {
	s.call("Domains")
	defer s.mu.Unlock()
	keys, vals := sortedValues(s.domains, same)
	return paginate("Domains", keys, vals, p, false)
}

func (s *memStore) Mailboxes(_ context.Context, p Page) ([]Mailbox, string, error) {
	s.call("Mailboxes")
	defer s.mu.Unlock()
	keys, vals := sortedValues(s.mailboxes, cloneMailbox)
	return paginate("Mailboxes", keys, vals, p, false)
}

func (s *memStore) Aliases(_ context.Context, p Page) ([]Alias, string, error) {
	s.call("Aliases")
	defer s.mu.Unlock()
	keys, vals := sortedValues(s.aliases, same)
	return paginate("Aliases", keys, vals, p, false)
}

func (s *memStore) Groups(_ context.Context, p Page) ([]Group, string, error) {
	s.call("Groups")
	defer s.mu.Unlock()
	keys, vals := sortedValues(s.groups, cloneGroup)
	return paginate("Groups", keys, vals, p, false)
}

func (s *memStore) OwnedGroups(_ context.Context, owner string, p Page) ([]Group, string, error) {
	s.call("OwnedGroups")
	defer s.mu.Unlock()
	owned := map[string]Group{}
	for id := range s.owners[owner] {
		if g, ok := s.groups[id]; ok {
			owned[id] = g
		}
	}
	keys, vals := sortedValues(owned, cloneGroup)
	return paginate("OwnedGroups", keys, vals, p, false)
}

func (s *memStore) Member(_ context.Context, group, ref string) (Member, error) {
	s.call("Member")
	defer s.mu.Unlock()
	m, ok := s.members[group][ref]
	if !ok {
		return Member{}, notFound("Member", "member of "+group, ref)
	}
	return cloneMember(m), nil
}

func (s *memStore) Members(_ context.Context, group string, p Page) ([]Member, string, error) {
	s.call("Members")
	defer s.mu.Unlock()
	keys, vals := sortedValues(s.members[group], cloneMember)
	return paginate("Members", keys, vals, p, false)
}

// AllMembers, like the DynamoDB store, returns no members rather than NotFound for a group that
// does not exist.
func (s *memStore) AllMembers(_ context.Context, group, kind string) ([]Member, error) {
	s.call("AllMembers")
	defer s.mu.Unlock()
	keys, vals := sortedValues(s.members[group], cloneMember)
	var out []Member
	for i, k := range keys {
		if kind == "" || strings.HasPrefix(k, kind+":") {
			out = append(out, vals[i])
		}
	}
	return out, nil
}

func (s *memStore) Referrers(_ context.Context, ref string) ([]string, error) {
	s.call("Referrers")
	defer s.mu.Unlock()
	var out []string
	for id, ms := range s.members {
		if _, ok := ms[ref]; ok {
			out = append(out, KindGroup+":"+id)
		}
	}
	for addr, a := range s.aliases {
		if a.TargetKind+":"+a.TargetID == ref {
			out = append(out, KindAlias+":"+addr)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *memStore) DomainInUse(_ context.Context, domain string) (bool, error) {
	s.call("DomainInUse")
	defer s.mu.Unlock()
	for addr := range s.claims {
		if DomainOf(addr) == domain {
			return true, nil
		}
	}
	return false, nil
}

func (s *memStore) GraphVersion(context.Context) (int64, error) {
	s.call("GraphVersion")
	defer s.mu.Unlock()
	return s.graph, nil
}

// replayLive reports whether a remembered answer exists and has not expired.
func (s *memStore) replayLive(key string) (Replay, bool) {
	r, ok := s.replays[key]
	return r, ok && s.now().Before(r.Expires)
}

func (s *memStore) Replay(_ context.Context, key string) (Replay, error) {
	s.call("Replay")
	defer s.mu.Unlock()
	r, ok := s.replayLive(key)
	if !ok {
		return Replay{}, notFound("Replay", "answer for key", key)
	}
	return r, nil
}

// Audit returns entries newest first; entries at the same instant come in descending id order.
func (s *memStore) Audit(_ context.Context, q AuditQuery, p Page) ([]AuditEntry, string, error) {
	s.call("Audit")
	defer s.mu.Unlock()
	if q.Actor != "" && q.Resource != "" {
		return nil, "", fault.InvalidField("memStore.Audit", "actor", "give an actor or a resource, not both")
	}
	var keys []string
	var entries []AuditEntry
	for _, e := range s.audit {
		if e.At.Before(q.From) || e.At.After(q.To) ||
			(q.Actor != "" && e.Actor.Subject != q.Actor) ||
			(q.Resource != "" && e.Resource != q.Resource) {
			continue
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b AuditEntry) int { return strings.Compare(auditKey(b), auditKey(a)) })
	for _, e := range entries {
		keys = append(keys, auditKey(e))
	}
	return paginate("Audit", keys, entries, p, true)
}

func auditKey(e AuditEntry) string { return fmt.Sprintf("%020d#%s", e.At.UnixNano(), e.ID) }

// itemOf names the stored item a mutation writes: DynamoDB refuses a transaction that touches an
// item twice, and so does memStore, so that a service bug of that kind shows in unit tests.
func itemOf(m Mutation) string {
	switch m := m.(type) {
	case PutDomain:
		return "domain:" + m.Domain.Name
	case DeleteDomain:
		return "domain:" + m.Name
	case PutMailbox:
		return "mailbox:" + m.Mailbox.Address
	case DeleteMailbox:
		return "mailbox:" + m.Address
	case PutAlias:
		return "alias:" + m.Alias.Address
	case DeleteAlias:
		return "alias:" + m.Address
	case PutGroup:
		return "group:" + m.Group.ID
	case DeleteGroup:
		return "group:" + m.ID
	case ClaimAddress:
		return "addr:" + m.Address
	case ReleaseAddress:
		return "addr:" + m.Address
	case PutMember:
		return "member:" + m.Group + "/" + m.Member.Ref()
	case RefreshMember:
		return "member:" + m.Group + "/" + m.Member.Ref()
	case DeleteMember:
		return "member:" + m.Group + "/" + m.Ref
	case PutOwner:
		return "owner:" + m.Group + "/" + m.Owner
	case DeleteOwner:
		return "owner:" + m.Group + "/" + m.Owner
	case BumpGraph:
		return "graph"
	case Record:
		return "audit:" + m.Entry.ID
	case Remember:
		return "replay:" + m.Replay.Key
	}
	return fmt.Sprintf("unknown %T", m)
}

// versionHolds checks a mutation's Expect against the stored item: 0 means it must not exist, n
// that it has version n, Any nothing.
func versionHolds(expect int64, exists bool, version int64) (bool, error) {
	switch {
	case expect == Any:
		return true, nil
	case expect == 0:
		return !exists, nil
	case expect > 0:
		return exists && version == expect, nil
	}
	return false, fmt.Errorf("Expect %d is neither a version nor Any", expect)
}

func versionOf[T any](m map[string]T, key string, meta func(T) Meta) (bool, int64) {
	v, ok := m[key]
	if !ok {
		return false, 0
	}
	return true, meta(v).Version
}

func domainMeta(d Domain) Meta   { return d.Meta }
func mailboxMeta(m Mailbox) Meta { return m.Meta }
func aliasMeta(a Alias) Meta     { return a.Meta }
func groupMeta(g Group) Meta     { return g.Meta }

// holds reports whether mutation m's condition holds in the current state.
func (s *memStore) holds(m Mutation) (bool, error) {
	switch m := m.(type) {
	case PutDomain:
		ok, v := versionOf(s.domains, m.Domain.Name, domainMeta)
		return versionHolds(m.Expect, ok, v)
	case DeleteDomain:
		ok, v := versionOf(s.domains, m.Name, domainMeta)
		return versionHolds(m.Expect, ok, v)
	case PutMailbox:
		ok, v := versionOf(s.mailboxes, m.Mailbox.Address, mailboxMeta)
		return versionHolds(m.Expect, ok, v)
	case DeleteMailbox:
		ok, v := versionOf(s.mailboxes, m.Address, mailboxMeta)
		return versionHolds(m.Expect, ok, v)
	case PutAlias:
		ok, v := versionOf(s.aliases, m.Alias.Address, aliasMeta)
		return versionHolds(m.Expect, ok, v)
	case DeleteAlias:
		ok, v := versionOf(s.aliases, m.Address, aliasMeta)
		return versionHolds(m.Expect, ok, v)
	case PutGroup:
		ok, v := versionOf(s.groups, m.Group.ID, groupMeta)
		return versionHolds(m.Expect, ok, v)
	case DeleteGroup:
		ok, v := versionOf(s.groups, m.ID, groupMeta)
		return versionHolds(m.Expect, ok, v)
	case ClaimAddress:
		_, taken := s.claims[m.Address]
		return !taken, nil
	case BumpGraph:
		if m.Expect < 0 {
			return false, fmt.Errorf("graph version %d", m.Expect)
		}
		return m.Expect == s.graph, nil
	case Remember:
		_, live := s.replayLive(m.Replay.Key)
		return !live, nil
	case Record:
		for _, e := range s.audit {
			if e.ID == m.Entry.ID {
				return false, nil
			}
		}
		return true, nil
	case RefreshMember:
		_, ok := s.members[m.Group][m.Member.Ref()]
		return ok, nil
	case ReleaseAddress, PutMember, DeleteMember, PutOwner, DeleteOwner:
		return true, nil
	}
	return false, fmt.Errorf("unknown mutation %T", m)
}

func (s *memStore) apply(m Mutation) {
	switch m := m.(type) {
	case PutDomain:
		s.domains[m.Domain.Name] = m.Domain
	case DeleteDomain:
		delete(s.domains, m.Name)
	case PutMailbox:
		s.mailboxes[m.Mailbox.Address] = cloneMailbox(m.Mailbox)
	case DeleteMailbox:
		delete(s.mailboxes, m.Address)
	case PutAlias:
		s.aliases[m.Alias.Address] = m.Alias
	case DeleteAlias:
		delete(s.aliases, m.Address)
	case PutGroup:
		s.groups[m.Group.ID] = cloneGroup(m.Group)
	case DeleteGroup:
		delete(s.groups, m.ID)
	case ClaimAddress:
		s.claims[m.Address] = m.Owner
	case ReleaseAddress:
		delete(s.claims, m.Address)
	case RefreshMember:
		s.members[m.Group][m.Member.Ref()] = cloneMember(m.Member)
	case PutMember:
		if s.members[m.Group] == nil {
			s.members[m.Group] = map[string]Member{}
		}
		s.members[m.Group][m.Member.Ref()] = cloneMember(m.Member)
	case DeleteMember:
		delete(s.members[m.Group], m.Ref)
		if len(s.members[m.Group]) == 0 {
			delete(s.members, m.Group)
		}
	case PutOwner:
		if s.owners[m.Owner] == nil {
			s.owners[m.Owner] = map[string]bool{}
		}
		s.owners[m.Owner][m.Group] = true
	case DeleteOwner:
		delete(s.owners[m.Owner], m.Group)
		if len(s.owners[m.Owner]) == 0 {
			delete(s.owners, m.Owner)
		}
	case BumpGraph:
		s.graph = m.Expect + 1
	case Record:
		s.audit = append(s.audit, m.Entry)
	case Remember:
		s.replays[m.Replay.Key] = m.Replay
	}
}

// Apply checks every mutation's condition first and changes nothing unless all hold.
func (s *memStore) Apply(_ context.Context, ms ...Mutation) error {
	const op = "memStore.Apply"
	if s.beforeApply != nil {
		s.beforeApply()
	}
	s.call("Apply")
	defer s.mu.Unlock()
	if len(ms) > MaxMutations {
		return fault.New(fault.Internal, op, "%d mutations in one Apply, at most %d", len(ms), MaxMutations)
	}
	items := map[string]bool{}
	for i, m := range ms {
		item := itemOf(m)
		if items[item] {
			return fault.New(fault.Internal, op, "mutation %d touches %s a second time", i, item)
		}
		items[item] = true
		ok, err := s.holds(m)
		if err != nil {
			return fault.Wrap(fault.Internal, op, err)
		}
		if !ok {
			return &fault.Error{Kind: fault.Conflict, Op: op, Err: &ConditionFailed{Index: i}}
		}
	}
	for _, m := range ms {
		s.apply(m)
	}
	s.applied = append(s.applied, ms)
	return nil
}

// Helpers for tests that set up state directly, bypassing the service's checks (to plant a cycle
// that should never get in, or to build a large tree quickly).

func (s *memStore) seedGroup(g Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g.Version == 0 {
		g.Version = 1
	}
	s.groups[g.ID] = cloneGroup(g)
}

func (s *memStore) seedMember(group string, m Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(PutMember{Group: group, Member: m})
	if g, ok := s.groups[group]; ok {
		g.MemberCount = len(s.members[group])
		s.groups[group] = g
	}
}

// touch makes a concurrent change to a stored item: its version grows by one and change is
// applied to it.
func (s *memStore) touchMailbox(addr string, change func(*Mailbox)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mailboxes[addr]
	change(&m)
	m.Version++
	s.mailboxes[addr] = m
}

func (s *memStore) touchGroup(id string, change func(*Group)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[id]
	change(&g)
	g.Version++
	s.groups[id] = g
}

func (s *memStore) auditLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.audit)
}

func (s *memStore) auditSince(n int) []AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit[n:])
}

// once returns f wrapped so that it runs on the first call only. Unlike sync.Once, a call made
// while f runs (f may Apply too) returns at once instead of waiting for f.
func once(f func()) func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			f()
		}
	}
}

// TestMemStore checks the fake itself where the service's tests lean on it.
func TestMemStore(t *testing.T) {
	ctx := context.Background()
	now := t0
	newStore := func() *memStore {
		s := newMemStore(func() time.Time { return now })
		if err := s.Apply(ctx, PutDomain{Domain: Domain{Name: "example.com", Meta: Meta{Version: 1}}},
			PutMailbox{Mailbox: Mailbox{Address: "ana@example.com", Meta: Meta{Version: 1}}},
			ClaimAddress{Address: "ana@example.com", Owner: Owner{Kind: KindMailbox, ID: "ana@example.com"}}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	failures := []struct {
		name string
		ms   []Mutation
		want int // the index ConditionFailed names
	}{
		{"create over an existing item", []Mutation{PutMailbox{Mailbox: Mailbox{Address: "ana@example.com", Meta: Meta{Version: 1}}}}, 0},
		{"stale version", []Mutation{PutDomain{Domain: Domain{Name: "other.example"}}, PutMailbox{Mailbox: Mailbox{Address: "ana@example.com"}, Expect: 2}}, 1},
		{"delete a missing item at a version", []Mutation{DeleteAlias{Address: "x@example.com", Expect: 1}}, 0},
		{"taken address", []Mutation{PutDomain{Domain: Domain{Name: "other.example"}}, ClaimAddress{Address: "ana@example.com"}}, 1},
		{"graph version moved", []Mutation{BumpGraph{Expect: 1}}, 0},
	}
	for _, tt := range failures {
		t.Run("refuses "+tt.name+" and changes nothing", func(t *testing.T) {
			s := newStore()
			err := s.Apply(ctx, tt.ms...)
			var cf *ConditionFailed
			if !fault.Is(err, fault.Conflict) || !errors.As(err, &cf) || cf.Index != tt.want {
				t.Fatalf("Apply() = %v, want a Conflict naming mutation %d", err, tt.want)
			}
			if len(s.domains) != 1 || len(s.applied) != 1 || s.graph != 0 {
				t.Errorf("something changed: %d domains, %d applies, graph %d", len(s.domains), len(s.applied), s.graph)
			}
		})
	}
	t.Run("refuses an item touched twice", func(t *testing.T) {
		s := newStore()
		err := s.Apply(ctx, ReleaseAddress{Address: "ana@example.com"}, ClaimAddress{Address: "ana@example.com"})
		wantKind(t, err, fault.Internal)
	})
	t.Run("remembers a key until it expires", func(t *testing.T) {
		s := newStore()
		r := Replay{Key: "k", Expires: now.Add(time.Hour)}
		if err := s.Apply(ctx, Remember{Replay: r}); err != nil {
			t.Fatal(err)
		}
		wantKind(t, s.Apply(ctx, Remember{Replay: r}), fault.Conflict)
		now = now.Add(2 * time.Hour)
		defer func() { now = t0 }()
		if _, err := s.Replay(ctx, "k"); !fault.Is(err, fault.NotFound) {
			t.Errorf("Replay() of an expired key = %v, want NotFound", err)
		}
		if err := s.Apply(ctx, Remember{Replay: r}); err != nil {
			t.Errorf("Remember of an expired key: %v", err)
		}
	})
	t.Run("pages in key order with opaque cursors", func(t *testing.T) {
		s := newStore()
		for _, a := range []string{"d@example.com", "b@example.com", "c@example.com"} {
			s.mailboxes[a] = Mailbox{Address: a}
		}
		var got []string
		p := Page{Limit: 3}
		for {
			page, next, err := s.Mailboxes(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				got = append(got, m.Address)
			}
			if next == "" {
				break
			}
			if strings.Contains(next, "@") {
				t.Errorf("cursor %q is not opaque", next)
			}
			p.Cursor = next
		}
		if want := []string{"ana@example.com", "b@example.com", "c@example.com", "d@example.com"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		_, _, err := s.Mailboxes(ctx, Page{Cursor: "%%%"})
		wantKind(t, err, fault.Invalid)
	})
	t.Run("referrers are memberships and alias targets", func(t *testing.T) {
		s := newStore()
		s.apply(PutMember{Group: "sales", Member: mailboxM("ana@example.com")})
		s.apply(PutAlias{Alias: Alias{Address: "info@example.com", TargetKind: KindMailbox, TargetID: "ana@example.com"}})
		got, _ := s.Referrers(ctx, "mailbox:ana@example.com")
		if want := []string{"alias:info@example.com", "group:sales"}; !slices.Equal(got, want) {
			t.Errorf("Referrers() = %v, want %v", got, want)
		}
	})
}

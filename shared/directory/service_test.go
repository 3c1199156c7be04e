package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// t0 is the fixture's clock until a test moves it.
var t0 = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

// noErr stands for success where a table gives the kind of error expected.
const noErr fault.Kind = -1

func kindOf(err error) fault.Kind {
	if err == nil {
		return noErr
	}
	return fault.KindOf(err)
}

func kindName(k fault.Kind) string {
	if k == noErr {
		return "no error"
	}
	return k.String()
}

// fixture is a Service over a memStore with a clock the test controls.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store *memStore
	svc   *Service
	now   time.Time
	ids   atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), now: t0}
	clock := func() time.Time { return f.now }
	f.store = newMemStore(clock)
	f.svc = &Service{Store: f.store, Audit: f.store, Now: clock, NewID: func() string {
		return fmt.Sprintf("entry-%04d", f.ids.Add(1))
	}}
	return f
}

func call(subject, email, requestID string, roles ...string) Call {
	return Call{Principal: Principal{Subject: subject, Email: email, Roles: roles}, RequestID: requestID}
}

var (
	admin   = call("sub-admin", "root@example.com", "req-admin", RoleAdmin)
	auditor = call("sub-auditor", "audit@example.com", "req-auditor", RoleAuditor)
)

func manager(email string) Call  { return call("sub-"+email, email, "req-manager", RoleGroupManager) }
func employee(email string) Call { return call("sub-"+email, email, "req-employee", RoleEmployee) }

// ifMatch returns c naming version v.
func ifMatch(c Call, v int64) Call {
	c.IfMatch = v
	return c
}

func (f *fixture) domain(name string) Domain {
	f.t.Helper()
	d, err := f.svc.CreateDomain(f.ctx, admin, Domain{Name: name})
	if err != nil {
		f.t.Fatalf("CreateDomain(%s): %v", name, err)
	}
	return d
}

func (f *fixture) mailbox(m Mailbox) Mailbox {
	f.t.Helper()
	m, err := f.svc.CreateMailbox(f.ctx, admin, m)
	if err != nil {
		f.t.Fatalf("CreateMailbox(%s): %v", m.Address, err)
	}
	return m
}

func (f *fixture) mailboxes(addrs ...string) {
	f.t.Helper()
	for _, a := range addrs {
		f.mailbox(Mailbox{Address: a})
	}
}

func (f *fixture) group(g Group) Group {
	f.t.Helper()
	g, err := f.svc.CreateGroup(f.ctx, admin, g)
	if err != nil {
		f.t.Fatalf("CreateGroup(%s): %v", g.ID, err)
	}
	return g
}

func (f *fixture) groups(ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		f.group(Group{ID: id, Name: id})
	}
}

func (f *fixture) alias(addr, target string) Alias {
	f.t.Helper()
	a, err := f.svc.CreateAlias(f.ctx, admin, Alias{Address: addr, Target: target})
	if err != nil {
		f.t.Fatalf("CreateAlias(%s → %s): %v", addr, target, err)
	}
	return a
}

func (f *fixture) add(group string, m Member) {
	f.t.Helper()
	if _, _, err := f.svc.AddMember(f.ctx, admin, group, m); err != nil {
		f.t.Fatalf("AddMember(%s, %s): %v", group, m.Ref(), err)
	}
}

func mailboxM(addr string) Member  { return Member{Kind: KindMailbox, Address: addr} }
func externalM(addr string) Member { return Member{Kind: KindExternal, Address: addr} }
func groupM(id string) Member      { return Member{Kind: KindGroup, Group: id} }

func (f *fixture) storedMailbox(addr string) Mailbox {
	f.t.Helper()
	m, err := f.store.Mailbox(f.ctx, addr)
	if err != nil {
		f.t.Fatalf("stored mailbox %s: %v", addr, err)
	}
	return m
}

func (f *fixture) storedGroup(id string) Group {
	f.t.Helper()
	g, err := f.store.Group(f.ctx, id)
	if err != nil {
		f.t.Fatalf("stored group %s: %v", id, err)
	}
	return g
}

func (f *fixture) memberRefs(group string) []string {
	f.t.Helper()
	ms, err := f.store.AllMembers(f.ctx, group, "")
	if err != nil {
		f.t.Fatal(err)
	}
	var refs []string
	for _, m := range ms {
		refs = append(refs, m.Ref())
	}
	return refs
}

func wantKind(t *testing.T, err error, want fault.Kind) {
	t.Helper()
	if got := kindOf(err); got != want {
		t.Fatalf("error = %v (%s), want %s", err, kindName(got), kindName(want))
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	wantKind(t, err, fault.Invalid)
	if got := fault.FieldOf(err); got != field {
		t.Fatalf("FieldOf(%v) = %q, want %q", err, got, field)
	}
}

// TestAuditEveryChange checks that each change writes exactly one audit entry, in the same Apply
// as the change, naming the actor, the request, the resource and its state before and after.
func TestAuditEveryChange(t *testing.T) {
	type change struct {
		name       string
		do         func(f *fixture) error
		action     string
		resource   string
		wantBefore bool
		wantAfter  bool
	}
	changes := []change{
		{"create domain", func(f *fixture) error {
			_, err := f.svc.CreateDomain(f.ctx, admin, Domain{Name: "other.example"})
			return err
		}, "domain.create", "domain:other.example", false, true},
		{"update domain", func(f *fixture) error {
			_, err := f.svc.UpdateDomain(f.ctx, admin, "example.com", []byte(`{"unknownRecipients":"drop"}`))
			return err
		}, "domain.update", "domain:example.com", true, true},
		{"delete domain", func(f *fixture) error {
			return f.svc.DeleteDomain(f.ctx, admin, "unused.example")
		}, "domain.delete", "domain:unused.example", true, false},
		{"create mailbox", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "new@example.com"})
			return err
		}, "mailbox.create", "mailbox:new@example.com", false, true},
		{"update mailbox", func(f *fixture) error {
			_, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"displayName":"Ana"}`))
			return err
		}, "mailbox.update", "mailbox:ana@example.com", true, true},
		{"delete mailbox", func(f *fixture) error {
			return f.svc.DeleteMailbox(f.ctx, admin, "lonely@example.com")
		}, "mailbox.delete", "mailbox:lonely@example.com", true, false},
		{"create alias", func(f *fixture) error {
			_, err := f.svc.CreateAlias(f.ctx, admin, Alias{Address: "a@example.com", Target: "ana@example.com"})
			return err
		}, "alias.create", "alias:a@example.com", false, true},
		{"update alias", func(f *fixture) error {
			_, err := f.svc.UpdateAlias(f.ctx, admin, "info@example.com", []byte(`{"target":"sales@example.com"}`))
			return err
		}, "alias.update", "alias:info@example.com", true, true},
		{"delete alias", func(f *fixture) error {
			return f.svc.DeleteAlias(f.ctx, admin, "info@example.com")
		}, "alias.delete", "alias:info@example.com", true, false},
		{"create group", func(f *fixture) error {
			_, err := f.svc.CreateGroup(f.ctx, admin, Group{Name: "Support"})
			return err
		}, "group.create", "group:support", false, true},
		{"update group", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, admin, "sales", []byte(`{"description":"APAC"}`))
			return err
		}, "group.update", "group:sales", true, true},
		{"delete group", func(f *fixture) error {
			return f.svc.DeleteGroup(f.ctx, admin, "empty")
		}, "group.delete", "group:empty", true, false},
		{"add member", func(f *fixture) error {
			_, _, err := f.svc.AddMember(f.ctx, admin, "sales", externalM("p@partner.example"))
			return err
		}, "group.add-member", "group:sales", false, true},
		{"remove member", func(f *fixture) error {
			return f.svc.RemoveMember(f.ctx, admin, "sales", "mailbox:ana@example.com")
		}, "group.remove-member", "group:sales", true, false},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.domain("unused.example")
			f.mailboxes("ana@example.com", "lonely@example.com")
			f.group(Group{ID: "sales", Name: "Sales", Addresses: []string{"sales@example.com"}})
			f.groups("empty")
			f.alias("info@example.com", "ana@example.com")
			f.add("sales", mailboxM("ana@example.com"))
			n, applies := f.store.auditLen(), len(f.store.applied)
			f.now = t0.Add(time.Hour)

			if err := tt.do(f); err != nil {
				t.Fatalf("change: %v", err)
			}

			entries := f.store.auditSince(n)
			if len(entries) != 1 {
				t.Fatalf("%d audit entries written, want 1: %+v", len(entries), entries)
			}
			e := entries[0]
			if e.Action != tt.action || e.Resource != tt.resource {
				t.Errorf("entry is %s on %s, want %s on %s", e.Action, e.Resource, tt.action, tt.resource)
			}
			if got, want := e.Actor, admin.Principal.Actor(); got.Subject != want.Subject || got.Email != want.Email || !slices.Equal(got.Roles, want.Roles) {
				t.Errorf("Actor = %+v, want %+v", got, want)
			}
			if e.RequestID != admin.RequestID {
				t.Errorf("RequestID = %q, want %q", e.RequestID, admin.RequestID)
			}
			if !e.At.Equal(f.now) || e.ID == "" {
				t.Errorf("At, ID = %v, %q; want %v and an id", e.At, e.ID, f.now)
			}
			if got := e.Before != nil; got != tt.wantBefore {
				t.Errorf("has before = %v, want %v (%s)", got, tt.wantBefore, e.Before)
			}
			if got := e.After != nil; got != tt.wantAfter {
				t.Errorf("has after = %v, want %v (%s)", got, tt.wantAfter, e.After)
			}
			for _, raw := range []json.RawMessage{e.Before, e.After} {
				if raw != nil && !json.Valid(raw) {
					t.Errorf("entry holds invalid JSON %s", raw)
				}
			}
			// The entry went in with the change, not in a write of its own.
			last := f.store.applied[len(f.store.applied)-1]
			if len(f.store.applied) != applies+1 {
				t.Errorf("%d Applies, want 1", len(f.store.applied)-applies)
			}
			if !slices.ContainsFunc(last, func(m Mutation) bool { r, ok := m.(Record); return ok && r.Entry.ID == e.ID }) {
				t.Error("the audit entry is not in the Apply that made the change")
			}
			if len(last) < 2 {
				t.Errorf("the last Apply holds only %v", last)
			}
		})
	}
}

func TestAuditBeforeAndAfter(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("ana@example.com")
	n := f.store.auditLen()
	if _, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"displayName":"Ana Lim"}`)); err != nil {
		t.Fatal(err)
	}
	e := f.store.auditSince(n)[0]
	var before, after Mailbox
	if err := json.Unmarshal(e.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.After, &after); err != nil {
		t.Fatal(err)
	}
	if before.DisplayName != "" || before.Version != 1 {
		t.Errorf("before = %+v, want no display name at version 1", before)
	}
	if after.DisplayName != "Ana Lim" || after.Version != 2 {
		t.Errorf("after = %+v, want Ana Lim at version 2", after)
	}
}

// TestFailedChangeWritesNoAudit checks that a change that fails, before or in its write, leaves
// the audit log as it was.
func TestFailedChangeWritesNoAudit(t *testing.T) {
	tests := []struct {
		name string
		do   func(f *fixture) error
		want fault.Kind
	}{
		{"invalid input", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "not an address"})
			return err
		}, fault.Invalid},
		{"forbidden", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, auditor, Mailbox{Address: "x@example.com"})
			return err
		}, fault.Forbidden},
		{"address taken, found by the store's condition", func(f *fixture) error {
			_, err := f.svc.CreateAlias(f.ctx, admin, Alias{Address: "ana@example.com", Target: "bob@example.com"})
			return err
		}, fault.Conflict},
		{"already exists", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "ana@example.com"})
			return err
		}, fault.Conflict},
		{"stale If-Match", func(f *fixture) error {
			_, err := f.svc.UpdateMailbox(f.ctx, ifMatch(admin, 7), "ana@example.com", []byte(`{"displayName":"X"}`))
			return err
		}, fault.Stale},
		{"domain in use", func(f *fixture) error { return f.svc.DeleteDomain(f.ctx, admin, "example.com") }, fault.Conflict},
		{"cycle", func(f *fixture) error {
			_, _, err := f.svc.AddMember(f.ctx, admin, "b", groupM("a"))
			return err
		}, fault.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com", "bob@example.com")
			f.groups("a", "b")
			f.add("a", groupM("b"))
			n := f.store.auditLen()
			wantKind(t, tt.do(f), tt.want)
			if got := f.store.auditLen() - n; got != 0 {
				t.Errorf("%d audit entries written, want none", got)
			}
		})
	}
}

// TestIfMatch checks the ETag rules on every resource: a stale If-Match is refused and changes
// nothing; a current one is honoured.
func TestIfMatch(t *testing.T) {
	type op struct {
		name   string
		do     func(f *fixture, c Call) error
		stored func(f *fixture) any
	}
	ops := []op{
		{"update domain", func(f *fixture, c Call) error {
			_, err := f.svc.UpdateDomain(f.ctx, c, "example.com", []byte(`{"unknownRecipients":"drop"}`))
			return err
		}, func(f *fixture) any { d, _ := f.store.Domain(f.ctx, "example.com"); return d }},
		{"delete domain", func(f *fixture, c Call) error {
			return f.svc.DeleteDomain(f.ctx, c, "unused.example")
		}, func(f *fixture) any { d, _ := f.store.Domain(f.ctx, "unused.example"); return d }},
		{"update mailbox", func(f *fixture, c Call) error {
			_, err := f.svc.UpdateMailbox(f.ctx, c, "ana@example.com", []byte(`{"displayName":"Ana"}`))
			return err
		}, func(f *fixture) any { return f.storedMailbox("ana@example.com") }},
		{"delete mailbox", func(f *fixture, c Call) error {
			return f.svc.DeleteMailbox(f.ctx, c, "bob@example.com")
		}, func(f *fixture) any { return f.storedMailbox("bob@example.com") }},
		{"update alias", func(f *fixture, c Call) error {
			_, err := f.svc.UpdateAlias(f.ctx, c, "info@example.com", []byte(`{"target":"bob@example.com"}`))
			return err
		}, func(f *fixture) any { a, _ := f.store.Alias(f.ctx, "info@example.com"); return a }},
		{"delete alias", func(f *fixture, c Call) error {
			return f.svc.DeleteAlias(f.ctx, c, "info@example.com")
		}, func(f *fixture) any { a, _ := f.store.Alias(f.ctx, "info@example.com"); return a }},
		{"update group", func(f *fixture, c Call) error {
			_, err := f.svc.UpdateGroup(f.ctx, c, "sales", []byte(`{"description":"x"}`))
			return err
		}, func(f *fixture) any { return f.storedGroup("sales") }},
		{"delete group", func(f *fixture, c Call) error {
			return f.svc.DeleteGroup(f.ctx, c, "sales")
		}, func(f *fixture) any { return f.storedGroup("sales") }},
		{"add member", func(f *fixture, c Call) error {
			_, _, err := f.svc.AddMember(f.ctx, c, "sales", mailboxM("bob@example.com"))
			return err
		}, func(f *fixture) any { return f.memberRefs("sales") }},
		{"remove member", func(f *fixture, c Call) error {
			return f.svc.RemoveMember(f.ctx, c, "sales", "mailbox:ana@example.com")
		}, func(f *fixture) any { return f.memberRefs("sales") }},
	}
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		f.domain("example.com")
		f.domain("unused.example")
		f.mailboxes("ana@example.com", "bob@example.com")
		f.alias("info@example.com", "ana@example.com")
		f.group(Group{ID: "sales", Name: "Sales"})
		f.add("sales", mailboxM("ana@example.com")) // sales is at version 2
		return f
	}
	current := map[string]int64{"domain": 1, "mailbox": 1, "alias": 1, "group": 2, "member": 2}
	for _, tt := range ops {
		t.Run(tt.name+": stale is refused and changes nothing", func(t *testing.T) {
			f := setup(t)
			before, n := tt.stored(f), f.store.auditLen()
			err := tt.do(f, ifMatch(admin, 9))
			wantKind(t, err, fault.Stale)
			if after := tt.stored(f); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("stored changed:\n got %+v\nwant %+v", after, before)
			}
			if f.store.auditLen() != n {
				t.Error("an audit entry was written")
			}
		})
		t.Run(tt.name+": current is honoured", func(t *testing.T) {
			f := setup(t)
			v := current[resourceWord(tt.name)]
			if err := tt.do(f, ifMatch(admin, v)); err != nil {
				t.Fatalf("with If-Match %d: %v", v, err)
			}
		})
	}
}

// resourceWord picks the resource out of "update group", "add member"...
func resourceWord(name string) string { return name[strings.LastIndexByte(name, ' ')+1:] }

// TestConcurrentChange simulates a change made by someone else between the service's read and its
// write. Without If-Match the service reads again and applies the patch to the new version; with
// an If-Match that was current when it read, it reports Stale.
func TestConcurrentChange(t *testing.T) {
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		f.domain("example.com")
		f.mailboxes("ana@example.com")
		f.store.resetCalls()
		f.store.beforeApply = once(func() {
			f.store.touchMailbox("ana@example.com", func(m *Mailbox) { m.DisplayName = "Someone Else" })
		})
		return f
	}
	t.Run("without If-Match the change is retried on the new version", func(t *testing.T) {
		f := setup(t)
		n := f.store.auditLen()
		got, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"locale":"fr"}`))
		if err != nil {
			t.Fatal(err)
		}
		stored := f.storedMailbox("ana@example.com")
		if stored.DisplayName != "Someone Else" || stored.Locale != "fr" || stored.Version != 3 {
			t.Errorf("stored = %+v, want both changes at version 3", stored)
		}
		if got.Version != stored.Version || got.DisplayName != stored.DisplayName {
			t.Errorf("returned %+v, want what was stored %+v", got, stored)
		}
		if f.store.callCount("Apply") != 2 {
			t.Errorf("Apply called %d times, want 2", f.store.callCount("Apply"))
		}
		if f.store.auditLen()-n != 1 {
			t.Errorf("%d audit entries, want 1", f.store.auditLen()-n)
		}
	})
	t.Run("with If-Match the change is stale", func(t *testing.T) {
		f := setup(t)
		_, err := f.svc.UpdateMailbox(f.ctx, ifMatch(admin, 1), "ana@example.com", []byte(`{"locale":"fr"}`))
		wantKind(t, err, fault.Stale)
		if got := f.storedMailbox("ana@example.com"); got.Locale != "en" || got.Version != 2 {
			t.Errorf("stored = %+v, want only the other change", got)
		}
	})
	t.Run("a group is retried the same way", func(t *testing.T) {
		f := setup(t)
		f.groups("sales")
		f.store.beforeApply = once(func() {
			f.store.touchGroup("sales", func(g *Group) { g.Name = "Sales Team" })
		})
		if _, err := f.svc.UpdateGroup(f.ctx, admin, "sales", []byte(`{"description":"APAC"}`)); err != nil {
			t.Fatal(err)
		}
		if got := f.storedGroup("sales"); got.Name != "Sales Team" || got.Description != "APAC" {
			t.Errorf("stored = %+v, want both changes", got)
		}
	})
	t.Run("endless contention gives up with Conflict", func(t *testing.T) {
		f := setup(t)
		f.store.beforeApply = func() {
			f.store.touchMailbox("ana@example.com", func(*Mailbox) {})
		}
		_, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"locale":"fr"}`))
		wantKind(t, err, fault.Conflict)
		if got := f.store.callCount("Apply"); got != raceRetries {
			t.Errorf("Apply called %d times, want %d", got, raceRetries)
		}
	})
}

func TestIdempotency(t *testing.T) {
	idem := func(key, fingerprint string) *Idempotency {
		return &Idempotency{Key: key, Fingerprint: fingerprint, Render: func(result any) Replay {
			b, _ := json.Marshal(result)
			return Replay{Status: 201, Body: b}
		}}
	}
	withKey := func(c Call, i *Idempotency) Call {
		c.Idempotency = i
		return c
	}
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		f.domain("example.com")
		return f
	}

	t.Run("the answer is remembered in the same Apply as the change", func(t *testing.T) {
		f := setup(t)
		if _, err := f.svc.CreateMailbox(f.ctx, withKey(admin, idem("k1", "fp1")), Mailbox{Address: "ana@example.com"}); err != nil {
			t.Fatal(err)
		}
		last := f.store.applied[len(f.store.applied)-1]
		var kinds []string
		for _, m := range last {
			kinds = append(kinds, fmt.Sprintf("%T", m))
		}
		for _, want := range []string{"directory.PutMailbox", "directory.Record", "directory.Remember"} {
			if !slices.Contains(kinds, want) {
				t.Errorf("the Apply holds %v, want %s among them", kinds, want)
			}
		}
		r, err := f.store.Replay(f.ctx, "k1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Fingerprint != "fp1" || r.Status != 201 || !r.Expires.Equal(t0.Add(24*time.Hour)) {
			t.Errorf("remembered %+v, want fingerprint fp1, status 201, expiry in 24 hours", r)
		}
		var m Mailbox
		if err := json.Unmarshal(r.Body, &m); err != nil || m.Address != "ana@example.com" {
			t.Errorf("remembered body %s, want the created mailbox", r.Body)
		}
	})
	t.Run("the same request again gets ErrReplay", func(t *testing.T) {
		f := setup(t)
		c := withKey(admin, idem("k1", "fp1"))
		if _, err := f.svc.CreateMailbox(f.ctx, c, Mailbox{Address: "ana@example.com"}); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.CreateMailbox(f.ctx, c, Mailbox{Address: "ana@example.com"})
		wantKind(t, err, fault.Conflict)
		if !errors.Is(err, ErrReplay) {
			t.Errorf("error = %v, want it to wrap ErrReplay", err)
		}
	})
	t.Run("another request with the key gets ErrReplay and changes nothing", func(t *testing.T) {
		f := setup(t)
		if _, err := f.svc.CreateMailbox(f.ctx, withKey(admin, idem("k1", "fp1")), Mailbox{Address: "ana@example.com"}); err != nil {
			t.Fatal(err)
		}
		n := f.store.auditLen()
		_, err := f.svc.CreateMailbox(f.ctx, withKey(admin, idem("k1", "fp2")), Mailbox{Address: "bob@example.com"})
		if !errors.Is(err, ErrReplay) || !fault.Is(err, fault.Conflict) {
			t.Errorf("error = %v, want a Conflict wrapping ErrReplay", err)
		}
		if _, err := f.store.Mailbox(f.ctx, "bob@example.com"); !fault.Is(err, fault.NotFound) {
			t.Errorf("bob@example.com was created (%v)", err)
		}
		if f.store.auditLen() != n {
			t.Error("an audit entry was written")
		}
	})
	t.Run("an expired key may be used again", func(t *testing.T) {
		f := setup(t)
		if _, err := f.svc.CreateMailbox(f.ctx, withKey(admin, idem("k1", "fp1")), Mailbox{Address: "ana@example.com"}); err != nil {
			t.Fatal(err)
		}
		f.now = t0.Add(25 * time.Hour)
		if _, err := f.svc.CreateMailbox(f.ctx, withKey(admin, idem("k1", "fp2")), Mailbox{Address: "bob@example.com"}); err != nil {
			t.Errorf("reusing an expired key: %v", err)
		}
	})
	t.Run("an internal change made on the way does not use the key", func(t *testing.T) {
		c := Call{IfMatch: 3, Idempotency: idem("k", "f")}.internal()
		if c.IfMatch != 0 || c.Idempotency != nil {
			t.Errorf("internal() = %+v, want no If-Match and no idempotency", c)
		}
	})
}

// TestAddressBelongsToOne checks that a served address is a mailbox's, an alias's or a group's,
// never two of them.
func TestAddressBelongsToOne(t *testing.T) {
	tests := []struct {
		name string
		do   func(f *fixture) error
	}{
		{"mailbox over a mailbox", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "ana@example.com"})
			return err
		}},
		{"mailbox over an alias", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "info@example.com"})
			return err
		}},
		{"mailbox over a group address", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "sales@example.com"})
			return err
		}},
		{"alias over a mailbox", func(f *fixture) error {
			_, err := f.svc.CreateAlias(f.ctx, admin, Alias{Address: "ana@example.com", Target: "sales@example.com"})
			return err
		}},
		{"alias over a group address", func(f *fixture) error {
			_, err := f.svc.CreateAlias(f.ctx, admin, Alias{Address: "sales@example.com", Target: "ana@example.com"})
			return err
		}},
		{"new group with a mailbox's address", func(f *fixture) error {
			_, err := f.svc.CreateGroup(f.ctx, admin, Group{Name: "Other", Addresses: []string{"ana@example.com"}})
			return err
		}},
		{"group updated to another group's address", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, admin, "support", []byte(`{"addresses":["help@example.com","sales@example.com"]}`))
			return err
		}},
		{"group updated to an alias's address", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, admin, "support", []byte(`{"addresses":["info@example.com"]}`))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com")
			f.group(Group{ID: "sales", Name: "Sales", Addresses: []string{"sales@example.com"}})
			f.group(Group{ID: "support", Name: "Support", Addresses: []string{"help@example.com"}})
			f.alias("info@example.com", "ana@example.com")
			claims := fmt.Sprint(f.store.claims)
			wantKind(t, tt.do(f), fault.Conflict)
			if got := fmt.Sprint(f.store.claims); got != claims {
				t.Errorf("claims changed:\n got %s\nwant %s", got, claims)
			}
		})
	}
}

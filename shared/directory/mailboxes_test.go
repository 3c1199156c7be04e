package directory

import (
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestMailboxLifecycle(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("boss@example.com")

	created, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "Ana@Example.com", DisplayName: "Ana Lim",
		ForwardTo: []string{"Ana.Lim@Corp.example"}, Manager: "BOSS@example.com", Locale: "ms-MY", TimeZone: "Asia/Kuala_Lumpur"})
	if err != nil {
		t.Fatal(err)
	}
	if created.Address != "ana@example.com" || created.Manager != "boss@example.com" || created.Status != StatusActive ||
		!slices.Equal(created.ForwardTo, []string{"ana.lim@corp.example"}) || created.Version != 1 || !created.CreatedAt.Equal(t0) {
		t.Errorf("created %+v", created)
	}
	if owner, err := f.store.AddressOwner(f.ctx, "ana@example.com"); err != nil || owner != (Owner{Kind: KindMailbox, ID: "ana@example.com"}) {
		t.Errorf("AddressOwner = %+v, %v; want the mailbox", owner, err)
	}

	got, err := f.svc.Mailbox(f.ctx, auditor, "ANA@example.com")
	if err != nil || got.DisplayName != "Ana Lim" {
		t.Errorf("Mailbox() = %+v, %v", got, err)
	}

	f.now = t0.Add(time.Hour)
	updated, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"forwardTo":null,"manager":null,"status":"suspended"}`))
	if err != nil {
		t.Fatal(err)
	}
	if updated.ForwardTo != nil || updated.Manager != "" || updated.Status != StatusSuspended || updated.DisplayName != "Ana Lim" ||
		updated.Version != 2 || !updated.CreatedAt.Equal(t0) || !updated.UpdatedAt.Equal(f.now) {
		t.Errorf("updated %+v: want forwarding and manager cleared, status suspended, the rest kept", updated)
	}

	list, _, err := f.svc.Mailboxes(f.ctx, admin, Page{Limit: 1})
	if err != nil || len(list) != 1 || list[0].Address != "ana@example.com" {
		t.Errorf("Mailboxes() first page = %+v, %v", list, err)
	}

	if err := f.svc.DeleteMailbox(f.ctx, admin, "ana@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Mailbox(f.ctx, admin, "ana@example.com")
	wantKind(t, err, fault.NotFound)
	if _, err := f.store.AddressOwner(f.ctx, "ana@example.com"); !fault.Is(err, fault.NotFound) {
		t.Errorf("the address is still claimed: %v", err)
	}
}

func TestMailboxErrors(t *testing.T) {
	tests := []struct {
		name  string
		do    func(f *fixture) error
		want  fault.Kind
		field string
	}{
		{"create on a domain Mailroom does not serve", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "ana@elsewhere.example"})
			return err
		}, fault.Invalid, "address"},
		{"create with a manager that is not a mailbox", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, admin, Mailbox{Address: "bob@example.com", Manager: "nobody@example.com"})
			return err
		}, fault.Invalid, "manager"},
		{"change the address", func(f *fixture) error {
			_, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"address":"anna@example.com"}`))
			return err
		}, fault.Invalid, "address"},
		{"set a manager that is not a mailbox", func(f *fixture) error {
			_, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"manager":"nobody@example.com"}`))
			return err
		}, fault.Invalid, "manager"},
		{"update a missing mailbox", func(f *fixture) error {
			_, err := f.svc.UpdateMailbox(f.ctx, admin, "nobody@example.com", []byte(`{}`))
			return err
		}, fault.NotFound, ""},
		{"update an invalid address", func(f *fixture) error {
			_, err := f.svc.UpdateMailbox(f.ctx, admin, "nobody", []byte(`{}`))
			return err
		}, fault.NotFound, ""},
		{"delete a missing mailbox", func(f *fixture) error { return f.svc.DeleteMailbox(f.ctx, admin, "nobody@example.com") }, fault.NotFound, ""},
		{"create by a group manager", func(f *fixture) error {
			_, err := f.svc.CreateMailbox(f.ctx, manager("ana@example.com"), Mailbox{Address: "bob@example.com"})
			return err
		}, fault.Forbidden, ""},
		{"delete by an employee, even their own", func(f *fixture) error {
			return f.svc.DeleteMailbox(f.ctx, employee("ana@example.com"), "ana@example.com")
		}, fault.Forbidden, ""},
		{"list by an employee", func(f *fixture) error {
			_, _, err := f.svc.Mailboxes(f.ctx, employee("ana@example.com"), Page{})
			return err
		}, fault.Forbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com")
			err := tt.do(f)
			wantKind(t, err, tt.want)
			if tt.field != "" {
				wantField(t, err, tt.field)
			}
		})
	}
}

func TestMailboxReadAccess(t *testing.T) {
	tests := []struct {
		name string
		c    Call
		addr string
		want fault.Kind
	}{
		{"admin", admin, "ana@example.com", noErr},
		{"auditor", auditor, "ana@example.com", noErr},
		{"employee, their own", employee("ana@example.com"), "Ana@Example.com", noErr},
		{"employee, someone else's", employee("bob@example.com"), "ana@example.com", fault.Forbidden},
		{"employee, an invalid address", employee("bob@example.com"), "nonsense", fault.Forbidden},
		{"owner of a group the mailbox is in", manager("boss@example.com"), "ana@example.com", noErr},
		{"owner of a group the mailbox is not in", manager("boss@example.com"), "bob@example.com", fault.Forbidden},
		{"group manager asking for a missing mailbox", manager("boss@example.com"), "nobody@example.com", fault.Forbidden},
		{"no role", call("sub-x", "ana@example.com", "r"), "ana@example.com", fault.Forbidden},
		{"admin asking for a missing mailbox", admin, "nobody@example.com", fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com", "bob@example.com", "boss@example.com")
			f.group(Group{ID: "sales", Name: "Sales", Owners: []string{"boss@example.com"}})
			f.add("sales", mailboxM("ana@example.com"))
			_, err := f.svc.Mailbox(f.ctx, tt.c, tt.addr)
			wantKind(t, err, tt.want)
		})
	}
}

// TestEmployeeUpdates checks that employees change only their own mailbox's display name, locale
// and time zone.
func TestEmployeeUpdates(t *testing.T) {
	tests := []struct {
		name  string
		c     Call
		addr  string
		patch string
		want  fault.Kind
	}{
		{"display name", employee("ana@example.com"), "ana@example.com", `{"displayName":"Ana Lim"}`, noErr},
		{"locale and time zone", employee("ana@example.com"), "ana@example.com", `{"locale":"fr-FR","timeZone":"Europe/Paris"}`, noErr},
		{"read-only fields are ignored, not refused", employee("ana@example.com"), "ana@example.com", `{"displayName":"Ana","version":7}`, noErr},
		{"forwarding", employee("ana@example.com"), "ana@example.com", `{"forwardTo":["ana@gmail.example"]}`, fault.Forbidden},
		{"status", employee("ana@example.com"), "ana@example.com", `{"status":"closed"}`, fault.Forbidden},
		{"manager", employee("ana@example.com"), "ana@example.com", `{"manager":"bob@example.com"}`, fault.Forbidden},
		{"someone else's display name", employee("bob@example.com"), "ana@example.com", `{"displayName":"Not Ana"}`, fault.Forbidden},
		{"a group manager is not an employee", manager("ana@example.com"), "ana@example.com", `{"displayName":"Ana"}`, fault.Forbidden},
		{"an employee token without the write scope", Call{Principal: Principal{Subject: "s", Email: "ana@example.com", Roles: []string{RoleEmployee}, Scopes: []string{ScopeRead}, HasScopes: true}},
			"ana@example.com", `{"displayName":"Ana"}`, fault.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com", "bob@example.com")
			before := f.storedMailbox("ana@example.com")
			_, err := f.svc.UpdateMailbox(f.ctx, tt.c, tt.addr, []byte(tt.patch))
			wantKind(t, err, tt.want)
			after := f.storedMailbox("ana@example.com")
			if changed := after.Version != before.Version; changed != (tt.want == noErr) {
				t.Errorf("stored mailbox changed = %v, want %v", changed, tt.want == noErr)
			}
		})
	}
}

// TestMailboxChangeReachesMemberships checks that status and forwarding, which expansion reads
// from the memberships, are copied there.
func TestMailboxChangeReachesMemberships(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("ana@example.com")
	f.groups("sales", "support", "other")
	f.add("sales", mailboxM("ana@example.com"))
	f.add("support", mailboxM("ana@example.com"))

	if _, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"status":"suspended","forwardTo":["ana@corp.example"]}`)); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"sales", "support"} {
		m, err := f.store.Member(f.ctx, g, "mailbox:ana@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != StatusSuspended || !slices.Equal(m.ForwardTo, []string{"ana@corp.example"}) {
			t.Errorf("membership in %s = %+v, want suspended, forwarding to ana@corp.example", g, m)
		}
	}
	if refs := f.memberRefs("other"); len(refs) != 0 {
		t.Errorf("other has members %v, want none", refs)
	}

	// A change that touches neither leaves the memberships alone.
	f.store.applied = nil
	if _, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"displayName":"Ana"}`)); err != nil {
		t.Fatal(err)
	}
	for _, m := range f.store.applied[0] {
		if _, ok := m.(PutMember); ok {
			t.Errorf("a display name change rewrote a membership: %+v", m)
		}
	}
}

func TestDeleteMailbox(t *testing.T) {
	t.Run("leaves its groups", func(t *testing.T) {
		f := newFixture(t)
		f.domain("example.com")
		f.mailboxes("ana@example.com", "bob@example.com")
		f.groups("sales", "support")
		f.add("sales", mailboxM("ana@example.com"))
		f.add("sales", mailboxM("bob@example.com"))
		f.add("support", mailboxM("ana@example.com"))
		n := f.store.auditLen()

		if err := f.svc.DeleteMailbox(f.ctx, ifMatch(admin, 1), "ana@example.com"); err != nil {
			t.Fatal(err)
		}
		if got := f.storedGroup("sales"); got.MemberCount != 1 {
			t.Errorf("sales has memberCount %d, want 1", got.MemberCount)
		}
		if got := f.storedGroup("support"); got.MemberCount != 0 {
			t.Errorf("support has memberCount %d, want 0", got.MemberCount)
		}
		if got, want := f.memberRefs("sales"), []string{"mailbox:bob@example.com"}; !slices.Equal(got, want) {
			t.Errorf("sales members = %v, want %v", got, want)
		}
		var actions []string
		for _, e := range f.store.auditSince(n) {
			actions = append(actions, e.Action+" "+e.Resource)
		}
		want := []string{"group.remove-member group:sales", "group.remove-member group:support", "mailbox.delete mailbox:ana@example.com"}
		if !slices.Equal(actions, want) {
			t.Errorf("audit = %q, want %q", actions, want)
		}
	})
	t.Run("refused while an alias points at it", func(t *testing.T) {
		f := newFixture(t)
		f.domain("example.com")
		f.mailboxes("ana@example.com")
		f.groups("sales")
		f.add("sales", mailboxM("ana@example.com"))
		f.alias("info@example.com", "ana@example.com")

		err := f.svc.DeleteMailbox(f.ctx, admin, "ana@example.com")
		wantKind(t, err, fault.Conflict)
		if got := fault.DetailsOf(err)["aliases"]; !slices.Equal(got.([]string), []string{"info@example.com"}) {
			t.Errorf("details aliases = %v, want [info@example.com]", got)
		}
		f.storedMailbox("ana@example.com")
		if got := f.storedGroup("sales"); got.MemberCount != 1 {
			t.Errorf("sales lost its member (memberCount %d)", got.MemberCount)
		}
	})
}

func TestEmployeeWithUnicodeDomain(t *testing.T) {
	f := newFixture(t)
	f.domain("bücher.example")
	f.mailboxes("anna@bücher.example")
	p, err := PrincipalFromClaims(map[string]string{"sub": "u1", "email": "anna@bücher.example", "roles": "employee"}, nil, "roles")
	if err != nil {
		t.Fatal(err)
	}
	c := Call{Principal: p, RequestID: "r"}
	if _, err := f.svc.Mailbox(f.ctx, c, "anna@bücher.example"); err != nil {
		t.Errorf("reading her own mailbox: %v", err)
	}
	if _, err := f.svc.UpdateMailbox(f.ctx, c, "anna@xn--bcher-kva.example", []byte(`{"displayName":"Anna"}`)); err != nil {
		t.Errorf("updating her own mailbox: %v", err)
	}
}

// TestCloseMailboxDoesNotRestoreRemovedMembership closes a mailbox while one of its memberships is
// removed concurrently (after the service listed them): the removed membership stays removed, the
// other one gets the new status.
func TestCloseMailboxDoesNotRestoreRemovedMembership(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("ana@example.com")
	f.groups("sales", "support")
	f.add("sales", mailboxM("ana@example.com"))
	f.add("support", mailboxM("ana@example.com"))
	applies := 0
	f.store.beforeApply = func() {
		// The first Apply is the mailbox change; before the first membership copy, someone
		// removes ana from support.
		if applies++; applies == 2 {
			f.store.apply(DeleteMember{Group: "support", Ref: "mailbox:ana@example.com"})
		}
	}
	if _, err := f.svc.UpdateMailbox(f.ctx, admin, "ana@example.com", []byte(`{"status":"closed"}`)); err != nil {
		t.Fatal(err)
	}
	if got := f.memberRefs("support"); len(got) != 0 {
		t.Errorf("support has %v after a concurrent removal, want nothing", got)
	}
	m, err := f.store.Member(f.ctx, "sales", "mailbox:ana@example.com")
	if err != nil || m.Status != StatusClosed {
		t.Errorf("sales membership = %+v, %v; want status closed", m, err)
	}
}

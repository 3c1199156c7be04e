package directory

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

func reviewIDs(gs []ReviewGroup) []string {
	ids := []string{}
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

func TestReviewGroups(t *testing.T) {
	f := newFixture(t)
	f.now = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	f.domain("example.com")
	f.mailboxes("boss@example.com", "gone@example.com", "ana@example.com", "bob@example.com", "cy@example.com")
	f.group(Group{ID: "expired", Name: "Expired", Type: "project", Expires: "2026-05-31", Owners: []string{"boss@example.com"}})
	f.group(Group{ID: "ends-today", Name: "Ends today", Type: "project", Expires: "2026-06-01", Owners: []string{"boss@example.com"}})
	f.group(Group{ID: "healthy", Name: "Healthy", Owners: []string{"boss@example.com", "gone@example.com"}})
	f.group(Group{ID: "no-owner", Name: "No owner"})
	f.group(Group{ID: "owners-closed", Name: "Owners closed", Owners: []string{"gone@example.com"}})
	f.group(Group{ID: "owner-deleted", Name: "Owner deleted", Owners: []string{"cy@example.com"}})
	for _, g := range []string{"expired", "ends-today", "healthy", "no-owner", "owners-closed", "owner-deleted"} {
		f.add(g, externalM("p@partner.example"))
	}
	f.add("healthy", mailboxM("ana@example.com"))
	f.add("healthy", mailboxM("bob@example.com"))
	f.add("no-owner", mailboxM("bob@example.com"))
	f.group(Group{ID: "empty", Name: "Empty", Owners: []string{"boss@example.com"}})
	f.group(Group{ID: "emptied", Name: "Emptied", Owners: []string{"boss@example.com"}})
	f.add("emptied", mailboxM("ana@example.com"))
	if err := f.svc.RemoveMember(f.ctx, admin, "emptied", "mailbox:ana@example.com"); err != nil {
		t.Fatal(err)
	}
	for patch, addr := range map[string]string{
		`{"status":"closed"}`:    "gone@example.com",
		`{"status":"suspended"}`: "bob@example.com",
	} {
		if _, err := f.svc.UpdateMailbox(f.ctx, admin, addr, []byte(patch)); err != nil {
			t.Fatal(err)
		}
	}
	f.store.mu.Lock()
	delete(f.store.mailboxes, "cy@example.com") // an owner gone without the service noticing
	f.store.mu.Unlock()

	got, err := f.svc.ReviewGroups(f.ctx, auditor)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want []string
	}{
		{"expired: past the last day, not on it", reviewIDs(got.Expired), []string{"expired"}},
		{"empty, including emptied", reviewIDs(got.Empty), []string{"emptied", "empty"}},
		{"unowned: no owners, owners closed or gone", reviewIDs(got.Unowned), []string{"no-owner", "owner-deleted", "owners-closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	t.Run("inactive members", func(t *testing.T) {
		want := []InactiveMember{{Group: "healthy", Address: "bob@example.com", Status: StatusSuspended}, {Group: "no-owner", Address: "bob@example.com", Status: StatusSuspended}}
		if !slices.Equal(got.InactiveMembers, want) {
			t.Errorf("got %+v, want %+v", got.InactiveMembers, want)
		}
	})
	t.Run("the expiry date is kept", func(t *testing.T) {
		if got.Expired[0].Expires != "2026-05-31" || got.Expired[0].Name != "Expired" {
			t.Errorf("got %+v", got.Expired[0])
		}
	})
	t.Run("employees may not read it", func(t *testing.T) {
		_, err := f.svc.ReviewGroups(f.ctx, employee("ana@example.com"))
		wantKind(t, err, fault.Forbidden)
	})
}

func TestReviewGroupsPagesAndOwnerReads(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("boss@example.com")
	for i := range 1005 {
		f.store.seedGroup(Group{ID: fmt.Sprintf("g%04d", i), Name: "G", Owners: []string{"boss@example.com"}})
	}
	f.store.resetCalls()
	got, err := f.svc.ReviewGroups(f.ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Empty) != 1005 || len(got.Unowned) != 0 {
		t.Errorf("%d empty, %d unowned; want 1005 and 0", len(got.Empty), len(got.Unowned))
	}
	if n := f.store.callCount("Groups"); n != 2 {
		t.Errorf("Groups called %d times, want 2 pages", n)
	}
	if n := f.store.callCount("Mailbox"); n != 1 {
		t.Errorf("Mailbox called %d times, want 1: an owner is read once", n)
	}
	if n := f.store.callCount("AllMembers"); n != 0 {
		t.Errorf("AllMembers called %d times for empty groups, want 0", n)
	}
}

func TestQueryAudit(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	// One change a day for ten days, alternating between two admins.
	admins := []Call{admin, call("sub-other", "other@example.com", "req-other", RoleAdmin)}
	for day := range 10 {
		f.now = t0.AddDate(0, 0, day)
		c := admins[day%2]
		if _, err := f.svc.CreateMailbox(f.ctx, c, Mailbox{Address: fmt.Sprintf("m%d@example.com", day)}); err != nil {
			t.Fatal(err)
		}
	}
	end := t0.AddDate(0, 0, 9) // the clock stays on the last change
	resources := func(es []AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Resource)
		}
		return out
	}
	tests := []struct {
		name string
		q    AuditQuery
		p    Page
		want []string
	}{
		{"default: the last 7 days, newest first", AuditQuery{}, Page{},
			[]string{"mailbox:m9@example.com", "mailbox:m8@example.com", "mailbox:m7@example.com", "mailbox:m6@example.com",
				"mailbox:m5@example.com", "mailbox:m4@example.com", "mailbox:m3@example.com", "mailbox:m2@example.com"}},
		{"a range", AuditQuery{From: t0.AddDate(0, 0, 1), To: t0.AddDate(0, 0, 3)}, Page{},
			[]string{"mailbox:m3@example.com", "mailbox:m2@example.com", "mailbox:m1@example.com"}},
		{"a range in another zone", AuditQuery{From: t0.AddDate(0, 0, 1).In(time.FixedZone("UTC+8", 8*3600)), To: t0.AddDate(0, 0, 1)}, Page{},
			[]string{"mailbox:m1@example.com"}},
		{"by resource", AuditQuery{From: t0, To: end, Resource: "mailbox:m4@example.com"}, Page{}, []string{"mailbox:m4@example.com"}},
		{"by actor", AuditQuery{From: t0.AddDate(0, 0, 4), To: end, Actor: "sub-other"}, Page{},
			[]string{"mailbox:m9@example.com", "mailbox:m7@example.com", "mailbox:m5@example.com"}},
		{"a page", AuditQuery{From: t0, To: end}, Page{Limit: 2}, []string{"mailbox:m9@example.com", "mailbox:m8@example.com"}},
		{"a resource over more than 366 days", AuditQuery{From: t0.AddDate(-2, 0, 0), To: end, Resource: "mailbox:m0@example.com"}, Page{},
			[]string{"mailbox:m0@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := f.svc.QueryAudit(f.ctx, auditor, tt.q, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(resources(got), tt.want) {
				t.Errorf("got %v, want %v", resources(got), tt.want)
			}
		})
	}

	t.Run("pages join up", func(t *testing.T) {
		var all []AuditEntry
		p := Page{Limit: 3}
		for {
			got, next, err := f.svc.QueryAudit(f.ctx, admin, AuditQuery{From: t0, To: end}, p)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, got...)
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if len(all) != 11 { // ten mailboxes and the domain
			t.Errorf("%d entries, want 11", len(all))
		}
	})

	refusals := []struct {
		name  string
		c     Call
		q     AuditQuery
		p     Page
		want  fault.Kind
		field string
	}{
		{"from after to", auditor, AuditQuery{From: end, To: t0}, Page{}, fault.Invalid, "from"},
		{"actor and resource together", auditor, AuditQuery{Actor: "sub-admin", Resource: "mailbox:m1@example.com"}, Page{}, fault.Invalid, "resource"},
		{"over 366 days", auditor, AuditQuery{From: end.AddDate(0, 0, -367), To: end}, Page{}, fault.Invalid, "from"},
		{"a limit over 1000", auditor, AuditQuery{}, Page{Limit: 1001}, fault.Invalid, "limit"},
		{"a negative limit", auditor, AuditQuery{}, Page{Limit: -1}, fault.Invalid, "limit"},
		{"a group manager", manager("boss@example.com"), AuditQuery{}, Page{}, fault.Forbidden, ""},
		{"an employee", employee("ana@example.com"), AuditQuery{}, Page{}, fault.Forbidden, ""},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			f.store.resetCalls()
			_, _, err := f.svc.QueryAudit(f.ctx, tt.c, tt.q, tt.p)
			wantKind(t, err, tt.want)
			if tt.field != "" {
				wantField(t, err, tt.field)
			}
			if n := f.store.callCount("Audit"); n != 0 {
				t.Errorf("the store was asked %d times", n)
			}
		})
	}
	t.Run("exactly 366 days is allowed", func(t *testing.T) {
		if _, _, err := f.svc.QueryAudit(f.ctx, auditor, AuditQuery{From: end.AddDate(0, 0, -366), To: end}, Page{}); err != nil {
			t.Error(err)
		}
	})
}

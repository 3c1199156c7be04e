package directory

import (
	"slices"
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
)

func groupIDs(gs []Group) []string {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

func TestGroupLifecycle(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("boss@example.com", "deputy@example.com", "ana@example.com")

	g, err := f.svc.CreateGroup(f.ctx, admin, Group{Name: "Sales Team", Addresses: []string{"Sales@Example.com"},
		Owners: []string{"boss@example.com"}, MemberCount: 40})
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != "sales-team" || g.Type != "other" || g.Posting.Policy != PostOrganisation || g.MemberCount != 0 || g.Version != 1 {
		t.Errorf("created %+v", g)
	}
	if o, err := f.store.AddressOwner(f.ctx, "sales@example.com"); err != nil || o != (Owner{Kind: KindGroup, ID: "sales-team"}) {
		t.Errorf("AddressOwner = %+v, %v; want the group", o, err)
	}
	owned, _, err := f.svc.Groups(f.ctx, manager("boss@example.com"), Page{})
	if err != nil || !slices.Equal(groupIDs(owned), []string{"sales-team"}) {
		t.Errorf("the owner's Groups() = %v, %v; want [sales-team]", groupIDs(owned), err)
	}

	g, err = f.svc.UpdateGroup(f.ctx, admin, "sales-team", []byte(`{"addresses":["team@example.com"],"owners":["deputy@example.com"],"memberCount":7}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.MemberCount != 0 || g.Version != 2 {
		t.Errorf("updated %+v: memberCount is Mailroom's", g)
	}
	if _, err := f.store.AddressOwner(f.ctx, "sales@example.com"); !fault.Is(err, fault.NotFound) {
		t.Errorf("the old address is still claimed (%v)", err)
	}
	if _, err := f.store.AddressOwner(f.ctx, "team@example.com"); err != nil {
		t.Errorf("the new address is not claimed: %v", err)
	}
	for owner, want := range map[string][]string{"boss@example.com": nil, "deputy@example.com": {"sales-team"}} {
		got, _, _ := f.svc.Groups(f.ctx, manager(owner), Page{})
		if !slices.Equal(groupIDs(got), want) {
			t.Errorf("Groups() for %s = %v, want %v", owner, groupIDs(got), want)
		}
	}

	if err := f.svc.DeleteGroup(f.ctx, admin, "sales-team"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Group(f.ctx, admin, "sales-team")
	wantKind(t, err, fault.NotFound)
	if _, err := f.store.AddressOwner(f.ctx, "team@example.com"); !fault.Is(err, fault.NotFound) {
		t.Errorf("the address is still claimed (%v)", err)
	}
	if got, _, _ := f.svc.Groups(f.ctx, manager("deputy@example.com"), Page{}); len(got) != 0 {
		t.Errorf("the former owner still lists %v", groupIDs(got))
	}
}

func TestGroupErrors(t *testing.T) {
	tests := []struct {
		name  string
		group Group
		want  fault.Kind
		field string
	}{
		{"address on a domain Mailroom does not serve", Group{Name: "X", Addresses: []string{"x@example.com", "x@elsewhere.example"}}, fault.Invalid, "addresses.1"},
		{"owner that is not a mailbox", Group{Name: "X", Owners: []string{"boss@example.com", "nobody@example.com"}}, fault.Invalid, "owners.1"},
		{"moderator that is not a mailbox", Group{Name: "X", Posting: Posting{Policy: PostModerated, Moderators: []string{"nobody@example.com"}}}, fault.Invalid, "posting.moderators.0"},
		{"id taken", Group{ID: "sales", Name: "Other Sales"}, fault.Conflict, ""},
		{"id derived from a name that is taken", Group{Name: "SALES"}, fault.Conflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("boss@example.com")
			f.groups("sales")
			_, err := f.svc.CreateGroup(f.ctx, admin, tt.group)
			wantKind(t, err, tt.want)
			if tt.field != "" {
				wantField(t, err, tt.field)
			}
		})
	}
}

// TestGroupAccess checks who may read and change a group. A group manager asking for a group
// they do not own gets Forbidden whether or not it exists.
func TestGroupAccess(t *testing.T) {
	boss := manager("boss@example.com")
	tests := []struct {
		name string
		do   func(f *fixture) error
		want fault.Kind
	}{
		{"owner reads", func(f *fixture) error { _, err := f.svc.Group(f.ctx, boss, "sales"); return err }, noErr},
		{"owner reads members", func(f *fixture) error { _, _, err := f.svc.Members(f.ctx, boss, "sales", Page{}); return err }, noErr},
		{"owner expands", func(f *fixture) error { _, err := f.svc.Expand(f.ctx, boss, "sales"); return err }, noErr},
		{"manager reads a group they do not own", func(f *fixture) error { _, err := f.svc.Group(f.ctx, boss, "support"); return err }, fault.Forbidden},
		{"manager reads a group that does not exist", func(f *fixture) error { _, err := f.svc.Group(f.ctx, boss, "nope"); return err }, fault.Forbidden},
		{"admin reads a group that does not exist", func(f *fixture) error { _, err := f.svc.Group(f.ctx, admin, "nope"); return err }, fault.NotFound},
		{"auditor reads", func(f *fixture) error { _, err := f.svc.Group(f.ctx, auditor, "support"); return err }, noErr},
		{"auditor updates", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, auditor, "support", []byte(`{"name":"X"}`))
			return err
		}, fault.Forbidden},
		{"employee reads", func(f *fixture) error {
			_, err := f.svc.Group(f.ctx, employee("boss@example.com"), "sales")
			return err
		}, fault.Forbidden},
		{"employee lists", func(f *fixture) error {
			_, _, err := f.svc.Groups(f.ctx, employee("boss@example.com"), Page{})
			return err
		}, fault.Forbidden},
		{"owner changes the name", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"name":"Sales APAC","description":"Asia"}`))
			return err
		}, noErr},
		{"owner changes the posting policy", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"posting":{"policy":"members"}}`))
			return err
		}, noErr},
		{"owner changes the type", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"type":"project"}`))
			return err
		}, fault.Forbidden},
		{"owner changes the addresses", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"addresses":["sales@example.com","more@example.com"]}`))
			return err
		}, fault.Forbidden},
		{"owner changes the owners", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"owners":["boss@example.com","ana@example.com"]}`))
			return err
		}, fault.Forbidden},
		{"owner changes the expiry", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"expires":"2030-01-01"}`))
			return err
		}, fault.Forbidden},
		{"owner changes the id", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "sales", []byte(`{"id":"sales-2"}`))
			return err
		}, fault.Invalid},
		{"manager updates a group they do not own", func(f *fixture) error {
			_, err := f.svc.UpdateGroup(f.ctx, boss, "support", []byte(`{"name":"Mine"}`))
			return err
		}, fault.Forbidden},
		{"owner adds a mailbox", func(f *fixture) error {
			_, _, err := f.svc.AddMember(f.ctx, boss, "sales", mailboxM("ana@example.com"))
			return err
		}, noErr},
		{"owner adds a group they also own", func(f *fixture) error {
			_, _, err := f.svc.AddMember(f.ctx, boss, "sales", groupM("sales-apac"))
			return err
		}, noErr},
		{"owner adds a group they do not own", func(f *fixture) error {
			_, _, err := f.svc.AddMember(f.ctx, boss, "sales", groupM("support"))
			return err
		}, fault.Forbidden},
		{"manager adds to a group they do not own", func(f *fixture) error {
			_, _, err := f.svc.AddMember(f.ctx, boss, "support", mailboxM("ana@example.com"))
			return err
		}, fault.Forbidden},
		{"owner removes a member", func(f *fixture) error {
			return f.svc.RemoveMember(f.ctx, boss, "sales", "mailbox:boss@example.com")
		}, noErr},
		{"manager removes from a group they do not own", func(f *fixture) error {
			return f.svc.RemoveMember(f.ctx, boss, "support", "mailbox:ana@example.com")
		}, fault.Forbidden},
		{"owner deletes", func(f *fixture) error { return f.svc.DeleteGroup(f.ctx, boss, "sales") }, fault.Forbidden},
		{"owner creates", func(f *fixture) error { _, err := f.svc.CreateGroup(f.ctx, boss, Group{Name: "New"}); return err }, fault.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("boss@example.com", "ana@example.com")
			f.group(Group{ID: "sales", Name: "Sales", Addresses: []string{"sales@example.com"}, Owners: []string{"boss@example.com"}})
			f.group(Group{ID: "sales-apac", Name: "Sales APAC", Owners: []string{"boss@example.com"}})
			f.group(Group{ID: "support", Name: "Support"})
			f.add("sales", mailboxM("boss@example.com"))
			f.add("support", mailboxM("ana@example.com"))
			before := f.storedGroup("sales")
			err := tt.do(f)
			wantKind(t, err, tt.want)
			if tt.want != noErr && f.storedGroup("sales").Version != before.Version {
				t.Error("a refused call changed the group")
			}
		})
	}
}

func TestGroupsListing(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("boss@example.com")
	f.groups("a", "b", "c")
	f.group(Group{ID: "d", Name: "D", Owners: []string{"boss@example.com"}})

	var all []string
	p := Page{Limit: 3}
	for {
		page, next, err := f.svc.Groups(f.ctx, auditor, p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, groupIDs(page)...)
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(all, want) {
		t.Errorf("paged through %v, want %v", all, want)
	}
	got, _, err := f.svc.Groups(f.ctx, manager("boss@example.com"), Page{})
	if err != nil || !slices.Equal(groupIDs(got), []string{"d"}) {
		t.Errorf("manager's list = %v, %v; want [d]", groupIDs(got), err)
	}
	got, _, err = f.svc.Groups(f.ctx, call("s", "", "r", RoleGroupManager), Page{})
	if err != nil || len(got) != 0 {
		t.Errorf("list for a manager without email = %v, %v; want none", groupIDs(got), err)
	}
}

func TestDeleteGroup(t *testing.T) {
	t.Run("leaves its parents, drops its members", func(t *testing.T) {
		f := newFixture(t)
		f.domain("example.com")
		f.mailboxes("ana@example.com", "boss@example.com")
		f.group(Group{ID: "apac", Name: "APAC", Addresses: []string{"apac@example.com"}, Owners: []string{"boss@example.com"}})
		f.groups("sales", "all")
		f.add("sales", groupM("apac"))
		f.add("all", groupM("apac"))
		f.add("apac", mailboxM("ana@example.com"))
		f.add("apac", externalM("p@partner.example"))

		if err := f.svc.DeleteGroup(f.ctx, admin, "apac"); err != nil {
			t.Fatal(err)
		}
		for _, parent := range []string{"sales", "all"} {
			if g := f.storedGroup(parent); g.MemberCount != 0 || len(f.memberRefs(parent)) != 0 {
				t.Errorf("%s still has %d members (%v)", parent, g.MemberCount, f.memberRefs(parent))
			}
		}
		if refs := f.memberRefs("apac"); len(refs) != 0 {
			t.Errorf("memberships of the deleted group remain: %v", refs)
		}
		if refs, _ := f.store.Referrers(f.ctx, "mailbox:ana@example.com"); len(refs) != 0 {
			t.Errorf("ana is still a member of %v", refs)
		}
	})
	t.Run("refused while an alias points at it", func(t *testing.T) {
		f := newFixture(t)
		f.domain("example.com")
		f.group(Group{ID: "sales", Name: "Sales", Addresses: []string{"sales@example.com"}})
		f.alias("info@example.com", "sales@example.com")
		err := f.svc.DeleteGroup(f.ctx, admin, "sales")
		wantKind(t, err, fault.Conflict)
		f.storedGroup("sales")
	})
	t.Run("a stale If-Match changes nothing, parents included", func(t *testing.T) {
		f := newFixture(t)
		f.domain("example.com")
		f.groups("sales", "all")
		f.add("all", groupM("sales"))
		err := f.svc.DeleteGroup(f.ctx, ifMatch(admin, 5), "sales")
		wantKind(t, err, fault.Stale)
		if refs := f.memberRefs("all"); len(refs) != 1 {
			t.Errorf("all has members %v, want sales still", refs)
		}
	})
}

package directory

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestAddMember(t *testing.T) {
	tests := []struct {
		name      string
		member    Member
		wantAdded bool
		want      fault.Kind
		field     string
	}{
		{"mailbox", mailboxM("Ana@Example.com"), true, noErr, ""},
		{"external", externalM("p@partner.example"), true, noErr, ""},
		{"group", groupM("apac"), true, noErr, ""},
		{"already there", mailboxM("bob@example.com"), false, noErr, ""},
		{"mailbox that does not exist", mailboxM("nobody@example.com"), false, fault.Invalid, "address"},
		{"external on a served domain", externalM("nobody@example.com"), false, fault.Invalid, "address"},
		{"group that does not exist", groupM("nope"), false, fault.Invalid, "group"},
		{"bad kind", Member{Kind: "alias", Address: "info@example.com"}, false, fault.Invalid, "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com", "bob@example.com")
			f.groups("sales", "apac")
			f.add("sales", mailboxM("bob@example.com"))
			before, n := f.storedGroup("sales"), f.store.auditLen()

			_, added, err := f.svc.AddMember(f.ctx, admin, "sales", tt.member)
			wantKind(t, err, tt.want)
			if tt.field != "" {
				wantField(t, err, tt.field)
			}
			if added != tt.wantAdded {
				t.Errorf("added = %v, want %v", added, tt.wantAdded)
			}
			after := f.storedGroup("sales")
			wantCount, wantVersion, wantEntries := before.MemberCount, before.Version, 0
			if tt.wantAdded {
				wantCount, wantVersion, wantEntries = wantCount+1, wantVersion+1, 1
			}
			if after.MemberCount != wantCount || after.Version != wantVersion {
				t.Errorf("group at memberCount %d, version %d; want %d, %d", after.MemberCount, after.Version, wantCount, wantVersion)
			}
			if got := f.store.auditLen() - n; got != wantEntries {
				t.Errorf("%d audit entries, want %d", got, wantEntries)
			}
		})
	}
}

func TestAddMemberKeepsMailboxState(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailbox(Mailbox{Address: "ana@example.com", Status: StatusSuspended, ForwardTo: []string{"ana@corp.example"}})
	f.groups("sales")
	m, _, err := f.svc.AddMember(f.ctx, admin, "sales", mailboxM("ana@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := f.store.Member(f.ctx, "sales", "mailbox:ana@example.com")
	for _, got := range []Member{m, stored} {
		if got.Status != StatusSuspended || !slices.Equal(got.ForwardTo, []string{"ana@corp.example"}) {
			t.Errorf("member %+v, want the mailbox's status and forwarding", got)
		}
	}
}

func TestRemoveMember(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("ana@example.com")
	f.groups("sales", "apac")
	f.add("sales", mailboxM("ana@example.com"))
	f.add("sales", groupM("apac"))

	if err := f.svc.RemoveMember(f.ctx, admin, "sales", "mailbox:ANA@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := f.storedGroup("sales"); got.MemberCount != 1 {
		t.Errorf("memberCount = %d, want 1", got.MemberCount)
	}
	if got, want := f.memberRefs("sales"), []string{"group:apac"}; !slices.Equal(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	wantKind(t, f.svc.RemoveMember(f.ctx, admin, "sales", "mailbox:ana@example.com"), fault.NotFound)
	wantField(t, f.svc.RemoveMember(f.ctx, admin, "sales", "ana@example.com"), "member")
	wantKind(t, f.svc.RemoveMember(f.ctx, admin, "nope", "group:apac"), fault.NotFound)
}

func TestMembersPages(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.groups("sales", "apac")
	f.add("sales", groupM("apac"))
	for i := range 5 {
		f.add("sales", externalM(fmt.Sprintf("p%d@partner.example", i)))
	}
	var refs []string
	p := Page{Limit: 2}
	for {
		ms, next, err := f.svc.Members(f.ctx, auditor, "sales", p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			refs = append(refs, m.Ref())
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	want := []string{"external:p0@partner.example", "external:p1@partner.example", "external:p2@partner.example",
		"external:p3@partner.example", "external:p4@partner.example", "group:apac"}
	if !slices.Equal(refs, want) {
		t.Errorf("members = %v, want %v (ordered by ref)", refs, want)
	}
}

// TestCycles checks that no change to group membership closes a cycle, and that the refusal
// names the cycle.
func TestCycles(t *testing.T) {
	tests := []struct {
		name      string
		edges     [][2]string // parent, child: added before the test
		add       [2]string   // parent, child: the addition tested
		wantCycle []string    // nil when the addition is allowed
	}{
		{"closing a chain", [][2]string{{"a", "b"}, {"b", "c"}}, [2]string{"c", "a"}, []string{"c", "a", "b", "c"}},
		{"a group in itself", nil, [2]string{"a", "a"}, []string{"a", "a"}},
		{"two groups in each other", [][2]string{{"a", "b"}}, [2]string{"b", "a"}, []string{"b", "a", "b"}},
		{"a diamond is not a cycle", [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}}, [2]string{"c", "d"}, nil},
		{"closing a diamond from below", [][2]string{{"a", "b"}, {"a", "c"}, {"b", "d"}, {"c", "d"}}, [2]string{"d", "a"}, []string{"d", "a", "b", "d"}},
		{"the same child in two branches", [][2]string{{"a", "b"}, {"c", "b"}}, [2]string{"a", "c"}, nil},
		{"a deep chain", [][2]string{{"a", "b"}, {"b", "c"}, {"c", "d"}, {"d", "e"}}, [2]string{"e", "b"}, []string{"e", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.groups("a", "b", "c", "d", "e")
			for _, e := range tt.edges {
				f.add(e[0], groupM(e[1]))
			}
			graph, _ := f.store.GraphVersion(f.ctx)
			_, added, err := f.svc.AddMember(f.ctx, admin, tt.add[0], groupM(tt.add[1]))
			if tt.wantCycle == nil {
				if err != nil || !added {
					t.Fatalf("AddMember() = %v, %v; want it added", added, err)
				}
				if got, _ := f.store.GraphVersion(f.ctx); got != graph+1 {
					t.Errorf("graph version %d, want %d", got, graph+1)
				}
				return
			}
			wantKind(t, err, fault.Conflict)
			got, _ := fault.DetailsOf(err)["cycle"].([]string)
			if !slices.Equal(got, tt.wantCycle) {
				t.Errorf("cycle = %v, want %v", got, tt.wantCycle)
			}
			if refs := f.memberRefs(tt.add[0]); slices.Contains(refs, "group:"+tt.add[1]) {
				t.Error("the member was added anyway")
			}
			if got, _ := f.store.GraphVersion(f.ctx); got != graph {
				t.Errorf("graph version moved to %d", got)
			}
		})
	}
}

// TestCycleRace checks that the graph version makes a group-in-group addition that lost a race
// read the graph again: two additions that are each harmless alone cannot together close a cycle.
func TestCycleRace(t *testing.T) {
	tests := []struct {
		name       string
		concurrent [2]string // parent, child: added by someone else between the read and the write
		c          Call
		wantCycle  []string
	}{
		{"an unrelated change: retried and added", [2]string{"c", "d"}, admin, nil},
		{"an unrelated change, with a current If-Match: retried and added", [2]string{"c", "d"}, ifMatch(admin, 1), nil},
		{"the reverse edge: retried and refused", [2]string{"b", "a"}, admin, []string{"a", "b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.groups("a", "b", "c", "d")
			f.store.resetCalls()
			f.store.beforeApply = once(func() {
				// What a concurrent AddMember writes.
				v, _ := f.store.GraphVersion(f.ctx)
				p, c := tt.concurrent[0], tt.concurrent[1]
				if err := f.store.Apply(f.ctx, PutMember{Group: p, Member: groupM(c)}, BumpGraph{Expect: v}); err != nil {
					t.Errorf("concurrent change: %v", err)
				}
			})
			_, _, err := f.svc.AddMember(f.ctx, tt.c, "a", groupM("b"))
			if tt.wantCycle == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got, want := f.memberRefs("a"), []string{"group:b"}; !slices.Equal(got, want) {
					t.Errorf("a has %v, want %v", got, want)
				}
				// The concurrent Apply, the lost one, and the retried one.
				if got := f.store.callCount("Apply"); got != 3 {
					t.Errorf("Apply called %d times, want 3", got)
				}
				return
			}
			wantKind(t, err, fault.Conflict)
			if got, _ := fault.DetailsOf(err)["cycle"].([]string); !slices.Equal(got, tt.wantCycle) {
				t.Errorf("cycle = %v, want %v", got, tt.wantCycle)
			}
			if refs := f.memberRefs("a"); len(refs) != 0 {
				t.Errorf("a has %v, want nothing", refs)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailbox(Mailbox{Address: "ana@example.com", ForwardTo: []string{"ana.lim@corp.example", "ana@home.example"}})
	f.mailboxes("bob@example.com", "cy@example.com")
	f.mailbox(Mailbox{Address: "dee@example.com", Status: StatusClosed})
	f.mailbox(Mailbox{Address: "eve@example.com", Status: StatusSuspended, ForwardTo: []string{"eve@home.example"}})
	f.groups("sales", "apac", "emea", "sg", "closed-only")

	// sales → apac → sg, sales → emea → sg: sg is reached through two branches.
	f.add("sales", groupM("apac"))
	f.add("sales", groupM("emea"))
	f.add("apac", groupM("sg"))
	f.add("emea", groupM("sg"))
	f.add("sales", mailboxM("ana@example.com"))
	f.add("apac", mailboxM("bob@example.com"))
	f.add("emea", mailboxM("bob@example.com")) // the same mailbox in two branches
	f.add("sg", mailboxM("cy@example.com"))
	f.add("sg", mailboxM("dee@example.com"))
	f.add("emea", mailboxM("eve@example.com"))
	f.add("sg", externalM("p@partner.example"))
	f.add("apac", externalM("p@partner.example"))
	f.add("sg", externalM("ana.lim@corp.example")) // also a forwarding destination

	f.store.resetCalls()
	got, err := f.svc.Expand(f.ctx, auditor, "sales")
	if err != nil {
		t.Fatal(err)
	}
	want := Expansion{
		Group: "sales",
		// ana forwards (her own address is left out); bob and cy have no forwarding.
		Addresses: []string{"ana.lim@corp.example", "ana@home.example", "bob@example.com", "cy@example.com", "p@partner.example"},
		Groups:    []string{"apac", "emea", "sales", "sg"},
		Skipped:   []Skipped{{Address: "dee@example.com", Reason: StatusClosed}, {Address: "eve@example.com", Reason: StatusSuspended}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Expand() =\n %+v\nwant\n %+v", got, want)
	}
	if n := f.store.callCount("AllMembers"); n != 4 {
		t.Errorf("AllMembers called %d times, want 4, once per group", n)
	}

	t.Run("a group with only inactive members", func(t *testing.T) {
		f.add("closed-only", mailboxM("dee@example.com"))
		got, err := f.svc.ExpandGroup(f.ctx, "closed-only")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Addresses) != 0 || got.Addresses == nil || len(got.Skipped) != 1 {
			t.Errorf("ExpandGroup() = %+v, want no addresses ([] not null) and one skipped", got)
		}
	})
	t.Run("an empty group", func(t *testing.T) {
		got, err := f.svc.ExpandGroup(f.ctx, "nope")
		if err != nil {
			t.Fatal(err)
		}
		if got.Addresses == nil || got.Skipped == nil || !slices.Equal(got.Groups, []string{"nope"}) {
			t.Errorf("ExpandGroup() = %+v, want empty lists", got)
		}
	})
}

// TestExpandPlantedCycle checks that expansion ends even if a cycle got into the store past the
// service's checks.
func TestExpandPlantedCycle(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"a", "b", "c"} {
		f.store.seedGroup(Group{ID: id, Name: id})
	}
	f.store.seedMember("a", groupM("b"))
	f.store.seedMember("b", groupM("c"))
	f.store.seedMember("c", groupM("a"))
	f.store.seedMember("c", groupM("c"))
	f.store.seedMember("b", externalM("x@partner.example"))

	got, err := f.svc.ExpandGroup(f.ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Groups, []string{"a", "b", "c"}) || !slices.Equal(got.Addresses, []string{"x@partner.example"}) {
		t.Errorf("ExpandGroup() = %+v", got)
	}
	if n := f.store.callCount("AllMembers"); n != 3 {
		t.Errorf("AllMembers called %d times, want 3", n)
	}
}

// TestExpandCostGrowsWithGroups builds a tree of 341 groups five levels deep (1 + 4 + 16 + 64 +
// 256) whose leaves hold 10,000 mailboxes, and checks that expansion reads each group's members
// once: the store is asked once per group, whatever the number of members.
func TestExpandCostGrowsWithGroups(t *testing.T) {
	f := newFixture(t)
	const fan, depth, mailboxes = 4, 5, 10000
	level := []string{"g"}
	f.store.seedGroup(Group{ID: "g", Name: "g"})
	groups := 1
	for range depth - 1 {
		var next []string
		for _, parent := range level {
			for i := range fan {
				id := fmt.Sprintf("%s-%d", parent, i)
				f.store.seedGroup(Group{ID: id, Name: id})
				f.store.seedMember(parent, groupM(id))
				next = append(next, id)
				groups++
			}
		}
		level = next
	}
	if groups != 341 {
		t.Fatalf("built %d groups, want 341", groups)
	}
	for i := range mailboxes {
		addr := fmt.Sprintf("user%05d@example.com", i)
		f.store.seedMember(level[i%len(level)], Member{Kind: KindMailbox, Address: addr, Status: StatusActive})
		// Every hundredth mailbox is in a second leaf as well: duplicates count once.
		if i%100 == 0 {
			f.store.seedMember(level[(i+1)%len(level)], Member{Kind: KindMailbox, Address: addr, Status: StatusActive})
		}
	}

	f.store.resetCalls()
	got, err := f.svc.ExpandGroup(f.ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Addresses) != mailboxes || len(got.Groups) != groups {
		t.Errorf("expanded to %d addresses in %d groups, want %d in %d", len(got.Addresses), len(got.Groups), mailboxes, groups)
	}
	if n := f.store.callCount("AllMembers"); n != groups {
		t.Errorf("AllMembers called %d times, want %d (one per group)", n, groups)
	}
	var other int
	for m, n := range f.store.calls {
		if m != "AllMembers" {
			other += n
		}
	}
	if other != 0 {
		t.Errorf("%d other store calls, want none: %v", other, f.store.calls)
	}
}

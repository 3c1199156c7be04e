package dynamo_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
)

var t0 = time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.UTC)

func meta(v int64) directory.Meta {
	return directory.Meta{Version: v, CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(v) * time.Minute)}
}

// newDirectory returns a directory over fresh tables made from template.yaml. With a counter, its
// client counts the requests it sends.
func newDirectory(t testing.TB, counter *awsclient.RequestCounter) *dynamo.Directory {
	t.Helper()
	client := devstacktest.Clients(t).DynamoDB
	if counter != nil {
		ep := devstacktest.Endpoints(t)
		c, err := awsclient.New(context.Background(), awsclient.Options{
			Region:    ep.Region,
			Endpoints: awsclient.Endpoints{DynamoDB: ep.DynamoDB},
			AccessKey: ep.AccessKey,
			SecretKey: ep.SecretKey,
			Counter:   counter,
		})
		if err != nil {
			t.Fatal(err)
		}
		client = c.DynamoDB
	}
	return dynamo.NewDirectory(client, devstacktest.Table(t, "DirectoryTable"), devstacktest.Table(t, "AuditTable"))
}

func apply(t testing.TB, d *dynamo.Directory, ms ...directory.Mutation) {
	t.Helper()
	if err := d.Apply(context.Background(), ms...); err != nil {
		t.Fatal(err)
	}
}

// conditionFailed returns the index of the mutation whose condition failed, or -1 when err is not
// a Conflict caused by one.
func conditionFailed(err error) int {
	var cf *directory.ConditionFailed
	if !fault.Is(err, fault.Conflict) || !errors.As(err, &cf) {
		return -1
	}
	return cf.Index
}

func sampleDirectory() (directory.Domain, directory.Mailbox, directory.Alias, directory.Group, []directory.Member) {
	dom := directory.Domain{Name: "xn--bcher-kva.example", UnicodeName: "bücher.example",
		UnknownRecipients: directory.UnknownCatchAll, CatchAll: "inbox@xn--bcher-kva.example", Meta: meta(1)}
	mbx := directory.Mailbox{Address: "ana@xn--bcher-kva.example", DisplayName: "Ana Lim",
		ForwardTo: []string{"ana.lim@corp.example", "ana@home.example"}, Status: directory.StatusActive,
		Manager: "boss@xn--bcher-kva.example", Locale: "ms-MY", TimeZone: "Asia/Kuala_Lumpur", Meta: meta(3)}
	als := directory.Alias{Address: "info@xn--bcher-kva.example", Target: "sales@xn--bcher-kva.example",
		TargetKind: directory.KindGroup, TargetID: "sales", Meta: meta(1)}
	grp := directory.Group{ID: "sales", Name: "Sales", Description: "Sales team", Type: "department",
		Addresses: []string{"sales@xn--bcher-kva.example"}, Owners: []string{"boss@xn--bcher-kva.example"},
		Posting: directory.Posting{Policy: directory.PostAllowList, Allow: []string{"@partner.example"}},
		Expires: "2027-03-31", MemberCount: 3, Meta: meta(4)}
	members := []directory.Member{
		{Kind: directory.KindExternal, Address: "partner@other.example"},
		{Kind: directory.KindGroup, Group: "sales-apac"},
		{Kind: directory.KindMailbox, Address: mbx.Address, Status: directory.StatusActive, ForwardTo: mbx.ForwardTo},
	}
	return dom, mbx, als, grp, members
}

func TestDirectoryRoundTrip(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	dom, mbx, als, grp, members := sampleDirectory()
	replay := directory.Replay{Key: "k1", Fingerprint: "f1", Status: 201,
		Header: map[string]string{"Location": "/groups/sales"}, Body: []byte(`{"id":"sales"}`),
		Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)}
	ms := []directory.Mutation{
		directory.PutDomain{Domain: dom, Expect: 0},
		directory.PutMailbox{Mailbox: mbx, Expect: 0},
		directory.PutAlias{Alias: als, Expect: 0},
		directory.PutGroup{Group: grp, Expect: 0},
		directory.ClaimAddress{Address: mbx.Address, Owner: directory.Owner{Kind: directory.KindMailbox, ID: mbx.Address}},
		directory.ClaimAddress{Address: grp.Addresses[0], Owner: directory.Owner{Kind: directory.KindGroup, ID: "sales"}},
		directory.PutOwner{Group: "sales", Owner: "boss@xn--bcher-kva.example"},
		directory.Remember{Replay: replay},
	}
	for _, m := range members {
		ms = append(ms, directory.PutMember{Group: "sales", Member: m})
	}
	apply(t, d, ms...)

	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", name, got, want)
		}
	}
	gotDom, err := d.Domain(ctx, dom.Name)
	check("Domain", gotDom, dom, err)
	gotMbx, err := d.Mailbox(ctx, mbx.Address)
	check("Mailbox", gotMbx, mbx, err)
	gotAls, err := d.Alias(ctx, als.Address)
	check("Alias", gotAls, als, err)
	gotGrp, err := d.Group(ctx, "sales")
	check("Group", gotGrp, grp, err)
	gotMem, err := d.Member(ctx, "sales", members[2].Ref())
	check("Member", gotMem, members[2], err)
	gotOwner, err := d.AddressOwner(ctx, grp.Addresses[0])
	check("AddressOwner", gotOwner, directory.Owner{Kind: directory.KindGroup, ID: "sales"}, err)
	gotReplay, err := d.Replay(ctx, "k1")
	check("Replay", gotReplay, replay, err)

	// Members come ordered by ref: external, group, mailbox.
	all, err := d.AllMembers(ctx, "sales", "")
	check("AllMembers", all, members, err)
	mailboxes, err := d.AllMembers(ctx, "sales", directory.KindMailbox)
	check("AllMembers(mailbox)", mailboxes, members[2:], err)
	page, next, err := d.Members(ctx, "sales", directory.Page{Limit: 2})
	check("Members page 1", page, members[:2], err)
	page, next, err = d.Members(ctx, "sales", directory.Page{Limit: 2, Cursor: next})
	check("Members page 2", page, members[2:], err)
	if next != "" {
		t.Errorf("Members: cursor %q after the last page", next)
	}

	doms, _, err := d.Domains(ctx, directory.Page{})
	check("Domains", doms, []directory.Domain{dom}, err)
	mbxs, _, err := d.Mailboxes(ctx, directory.Page{})
	check("Mailboxes", mbxs, []directory.Mailbox{mbx}, err)
	alss, _, err := d.Aliases(ctx, directory.Page{})
	check("Aliases", alss, []directory.Alias{als}, err)
	grps, _, err := d.Groups(ctx, directory.Page{})
	check("Groups", grps, []directory.Group{grp}, err)
}

func TestDirectoryNotFound(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	tests := []struct {
		name string
		read func() error
	}{
		{"Domain", func() error { _, err := d.Domain(ctx, "absent.example"); return err }},
		{"Mailbox", func() error { _, err := d.Mailbox(ctx, "absent@example.com"); return err }},
		{"Alias", func() error { _, err := d.Alias(ctx, "absent@example.com"); return err }},
		{"Group", func() error { _, err := d.Group(ctx, "absent"); return err }},
		{"Member", func() error { _, err := d.Member(ctx, "absent", "mailbox:absent@example.com"); return err }},
		{"AddressOwner", func() error { _, err := d.AddressOwner(ctx, "absent@example.com"); return err }},
		{"Replay", func() error { _, err := d.Replay(ctx, "absent"); return err }},
	}
	for _, tt := range tests {
		if err := tt.read(); !fault.Is(err, fault.NotFound) {
			t.Errorf("%s: error = %v (%v), want NotFound", tt.name, err, fault.KindOf(err))
		}
	}
	if v, err := d.GraphVersion(ctx); err != nil || v != 0 {
		t.Errorf("GraphVersion of an empty directory = %d, %v; want 0, nil", v, err)
	}
	for _, f := range []func() (any, error){
		func() (any, error) { return d.AllMembers(ctx, "absent", "") },
		func() (any, error) { return d.Referrers(ctx, "group:absent") },
		func() (any, error) { v, _, err := d.Groups(ctx, directory.Page{}); return v, err },
	} {
		if got, err := f(); err != nil || reflect.ValueOf(got).Len() != 0 {
			t.Errorf("empty read = %v, %v; want nothing, nil", got, err)
		}
	}
}

func TestDirectoryVersionConditions(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	_, mbx, _, grp, _ := sampleDirectory()
	apply(t, d, directory.PutMailbox{Mailbox: mbx, Expect: 0})
	v3 := mbx.Version

	entry := directory.AuditEntry{ID: "e1", At: t0, Actor: directory.Actor{Subject: "admin-1", Roles: []string{"admin"}},
		Action: "mailbox.update", Resource: "mailbox:" + mbx.Address}
	stale := mbx
	stale.Version, stale.DisplayName = v3+1, "Stale"
	err := d.Apply(ctx,
		directory.PutGroup{Group: grp, Expect: 0},
		directory.PutMailbox{Mailbox: stale, Expect: v3 - 1},
		directory.Record{Entry: entry},
	)
	if got := conditionFailed(err); got != 1 {
		t.Fatalf("stale Expect: error %v, failed index %d; want Conflict at mutation 1", err, got)
	}
	// Nothing of the failed transaction was written.
	if _, err := d.Group(ctx, grp.ID); !fault.Is(err, fault.NotFound) {
		t.Errorf("group of a failed Apply: error = %v, want NotFound", err)
	}
	if got, _ := d.Mailbox(ctx, mbx.Address); got.Version != v3 || got.DisplayName != mbx.DisplayName {
		t.Errorf("mailbox after a failed Apply = version %d %q, want version %d %q", got.Version, got.DisplayName, v3, mbx.DisplayName)
	}
	if got, _, err := d.Audit(ctx, directory.AuditQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour)}, directory.Page{}); err != nil || len(got) != 0 {
		t.Errorf("audit after a failed Apply = %v, %v; want nothing", got, err)
	}

	// The right version replaces the item; the old one no longer holds.
	apply(t, d, directory.PutMailbox{Mailbox: stale, Expect: v3}, directory.Record{Entry: entry})
	if got, _ := d.Mailbox(ctx, mbx.Address); got.Version != v3+1 || got.DisplayName != "Stale" {
		t.Errorf("mailbox after a conditional Put = version %d %q, want version %d %q", got.Version, got.DisplayName, v3+1, "Stale")
	}

	tests := []struct {
		name string
		ms   []directory.Mutation
		want int // failing index, -1 for success
	}{
		{"create over an existing item", []directory.Mutation{directory.PutMailbox{Mailbox: mbx, Expect: 0}}, 0},
		{"audit id used twice", []directory.Mutation{directory.PutGroup{Group: grp, Expect: 0}, directory.Record{Entry: entry}}, 1},
		{"update of a missing item", []directory.Mutation{directory.PutGroup{Group: grp, Expect: 4}}, 0},
		{"delete with a stale version", []directory.Mutation{directory.DeleteMailbox{Address: mbx.Address, Expect: v3}}, 0},
		{"delete of a missing item with a version", []directory.Mutation{directory.DeleteGroup{ID: grp.ID, Expect: 1}}, 0},
		{"unconditional put", []directory.Mutation{directory.PutGroup{Group: grp, Expect: directory.Any}}, -1},
		{"delete with the current version", []directory.Mutation{directory.DeleteGroup{ID: grp.ID, Expect: grp.Version}}, -1},
		{"unconditional delete of a missing item", []directory.Mutation{directory.DeleteAlias{Address: "none@example.com", Expect: directory.Any}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Apply(ctx, tt.ms...)
			switch {
			case tt.want < 0 && err != nil:
				t.Errorf("error = %v, want none", err)
			case tt.want >= 0 && conditionFailed(err) != tt.want:
				t.Errorf("error = %v, want Conflict at mutation %d", err, tt.want)
			}
		})
	}

	if err := d.Apply(ctx, directory.PutGroup{Group: grp, Expect: -2}); !fault.Is(err, fault.Internal) {
		t.Errorf("Expect -2: error = %v, want Internal", err)
	}
	var tooMany []directory.Mutation
	for i := range directory.MaxMutations + 1 {
		tooMany = append(tooMany, directory.PutOwner{Group: fmt.Sprint("g", i), Owner: "o@example.com"})
	}
	if err := d.Apply(ctx, tooMany...); !fault.Is(err, fault.Internal) {
		t.Errorf("%d mutations: error = %v, want Internal", len(tooMany), err)
	}
	if err := d.Apply(ctx, tooMany[:directory.MaxMutations]...); err != nil {
		t.Errorf("%d mutations: %v", directory.MaxMutations, err)
	}
}

func TestDirectoryClaimAddress(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	ana := directory.Owner{Kind: directory.KindMailbox, ID: "ana@example.com"}
	apply(t, d, directory.ClaimAddress{Address: "ana@example.com", Owner: ana})

	err := d.Apply(ctx,
		directory.PutOwner{Group: "g", Owner: "x@example.com"},
		directory.ClaimAddress{Address: "ana@example.com", Owner: directory.Owner{Kind: directory.KindGroup, ID: "g"}})
	if got := conditionFailed(err); got != 1 {
		t.Errorf("claim of a taken address: error %v, failed index %d; want Conflict at 1", err, got)
	}
	if got, err := d.AddressOwner(ctx, "ana@example.com"); err != nil || got != ana {
		t.Errorf("owner after a failed claim = %+v, %v; want %+v", got, err, ana)
	}

	if in, err := d.DomainInUse(ctx, "example.com"); err != nil || !in {
		t.Errorf("DomainInUse(example.com) = %v, %v; want true", in, err)
	}
	if in, err := d.DomainInUse(ctx, "other.example"); err != nil || in {
		t.Errorf("DomainInUse(other.example) = %v, %v; want false", in, err)
	}
	// A domain whose name ends like another's is another domain.
	if in, err := d.DomainInUse(ctx, "ple.com"); err != nil || in {
		t.Errorf("DomainInUse(ple.com) = %v, %v; want false", in, err)
	}
	apply(t, d, directory.ReleaseAddress{Address: "ana@example.com"})
	if in, err := d.DomainInUse(ctx, "example.com"); err != nil || in {
		t.Errorf("DomainInUse after release = %v, %v; want false", in, err)
	}
	group := directory.Owner{Kind: directory.KindGroup, ID: "g"}
	apply(t, d, directory.ClaimAddress{Address: "ana@example.com", Owner: group})
	if got, err := d.AddressOwner(ctx, "ana@example.com"); err != nil || got != group {
		t.Errorf("owner after release and claim = %+v, %v; want %+v", got, err, group)
	}
}

func TestDirectoryRemember(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { return now }
	r := directory.Replay{Key: "key-1", Fingerprint: "a", Status: 201, Expires: now.Add(24 * time.Hour)}
	apply(t, d, directory.Remember{Replay: r})

	second := r
	second.Fingerprint = "b"
	if got := conditionFailed(d.Apply(ctx, directory.Remember{Replay: second})); got != 0 {
		t.Errorf("second Remember of a live key: failed index %d, want Conflict at 0", got)
	}
	if got, err := d.Replay(ctx, "key-1"); err != nil || got.Fingerprint != "a" {
		t.Errorf("Replay = %+v, %v; want the first answer", got, err)
	}

	// Past its expiry the key reads as gone and may be used again, though the item is still there.
	now = now.Add(24*time.Hour + 2*time.Second)
	if _, err := d.Replay(ctx, "key-1"); !fault.Is(err, fault.NotFound) {
		t.Errorf("Replay of an expired key: error = %v, want NotFound", err)
	}
	second.Expires = now.Add(24 * time.Hour)
	apply(t, d, directory.Remember{Replay: second})
	if got, err := d.Replay(ctx, "key-1"); err != nil || got.Fingerprint != "b" {
		t.Errorf("Replay after reuse = %+v, %v; want the second answer", got, err)
	}
}

func TestDirectoryBumpGraph(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	apply(t, d, directory.BumpGraph{Expect: 0})
	if got := conditionFailed(d.Apply(ctx, directory.PutOwner{Group: "a", Owner: "b"}, directory.BumpGraph{Expect: 0})); got != 1 {
		t.Errorf("BumpGraph from a stale version: failed index %d, want 1", got)
	}
	apply(t, d, directory.BumpGraph{Expect: 1})
	if v, err := d.GraphVersion(ctx); err != nil || v != 2 {
		t.Errorf("GraphVersion = %d, %v; want 2", v, err)
	}
	if got := conditionFailed(d.Apply(ctx, directory.BumpGraph{Expect: 3})); got != 0 {
		t.Errorf("BumpGraph from a future version: failed index %d, want 0", got)
	}
}

func putGroups(t testing.TB, d *dynamo.Directory, n int) []string {
	t.Helper()
	var ids []string
	var ms []directory.Mutation
	for i := range n {
		id := fmt.Sprintf("g%04d", i)
		ids = append(ids, id)
		ms = append(ms, directory.PutGroup{Group: directory.Group{ID: id, Name: id, Type: "other",
			Posting: directory.Posting{Policy: directory.PostMembers}, Meta: meta(1)}})
	}
	for chunk := range slices.Chunk(ms, directory.MaxMutations) {
		apply(t, d, chunk...)
	}
	return ids
}

func TestDirectoryListGroupsPaged(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	want := putGroups(t, d, 250)
	var got []string
	var sizes []int
	cursor := ""
	for {
		page, next, err := d.Groups(ctx, directory.Page{Limit: 100, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		for _, g := range page {
			got = append(got, g.ID)
		}
		if next == "" {
			break
		}
		if len(sizes) > 10 {
			t.Fatal("listing does not end")
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %d groups, want the %d in order", len(got), len(want))
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("page sizes = %v, want [100 100 50]", sizes)
	}
	// No limit means 100.
	if page, _, err := d.Groups(ctx, directory.Page{}); err != nil || len(page) != 100 {
		t.Errorf("default page = %d groups, %v; want 100", len(page), err)
	}
}

func TestDirectoryBadCursor(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	putGroups(t, d, 3)
	apply(t, d,
		directory.PutMember{Group: "g0000", Member: directory.Member{Kind: directory.KindExternal, Address: "a@x.example"}},
		directory.PutMember{Group: "g0000", Member: directory.Member{Kind: directory.KindExternal, Address: "b@x.example"}},
		directory.PutOwner{Group: "g0000", Owner: "o@example.com"},
		directory.PutOwner{Group: "g0001", Owner: "o@example.com"},
	)
	_, groupsCursor, err := d.Groups(ctx, directory.Page{Limit: 1})
	if err != nil || groupsCursor == "" {
		t.Fatalf("Groups: cursor %q, %v", groupsCursor, err)
	}
	_, membersCursor, err := d.Members(ctx, "g0000", directory.Page{Limit: 1})
	if err != nil || membersCursor == "" {
		t.Fatalf("Members: cursor %q, %v", membersCursor, err)
	}
	forged := func(c map[string]any) string {
		b, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name string
		list func() error
	}{
		{"garbage", func() error { _, _, err := d.Groups(ctx, directory.Page{Cursor: "not a cursor!"}); return err }},
		{"base64 of garbage", func() error {
			_, _, err := d.Groups(ctx, directory.Page{Cursor: base64.RawURLEncoding.EncodeToString([]byte("{]"))})
			return err
		}},
		{"groups cursor for mailboxes", func() error { _, _, err := d.Mailboxes(ctx, directory.Page{Cursor: groupsCursor}); return err }},
		{"members cursor for groups", func() error { _, _, err := d.Groups(ctx, directory.Page{Cursor: membersCursor}); return err }},
		{"members cursor of another group", func() error {
			_, _, err := d.Members(ctx, "g0001", directory.Page{Cursor: membersCursor})
			return err
		}},
		{"groups cursor for owned groups", func() error {
			_, _, err := d.OwnedGroups(ctx, "o@example.com", directory.Page{Cursor: groupsCursor})
			return err
		}},
		{"forged key of another partition", func() error {
			c := forged(map[string]any{"q": "list:group", "k": map[string]string{
				"PK": "GRP#g0000", "SK": "META", "GSI3PK": "LIST#mailbox", "GSI3SK": "g0000"}})
			_, _, err := d.Groups(ctx, directory.Page{Cursor: c})
			return err
		}},
		{"forged key missing attributes", func() error {
			c := forged(map[string]any{"q": "list:group", "k": map[string]string{"GSI3PK": "LIST#group", "X": "1"}})
			_, _, err := d.Groups(ctx, directory.Page{Cursor: c})
			return err
		}},
		{"groups cursor for the audit log", func() error {
			_, _, err := d.Audit(ctx, directory.AuditQuery{From: t0, To: t0}, directory.Page{Cursor: groupsCursor})
			return err
		}},
	}
	for _, tt := range tests {
		err := tt.list()
		if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "cursor" {
			t.Errorf("%s: error = %v, want Invalid field cursor", tt.name, err)
		}
	}
	if _, next, err := d.Groups(ctx, directory.Page{Limit: 1, Cursor: groupsCursor}); err != nil || next == "" {
		t.Errorf("Groups with its own cursor: next %q, %v", next, err)
	}
}

// TestDirectoryAllMembersLarge checks that expanding a large group reads every member in a few
// requests, not one per member.
func TestDirectoryAllMembersLarge(t *testing.T) {
	ctx := context.Background()
	counter := &awsclient.RequestCounter{}
	d := newDirectory(t, counter)
	const n = 7000
	var ms []directory.Mutation
	for i := range n {
		m := directory.Member{Kind: directory.KindMailbox, Address: fmt.Sprintf("user%05d@example.com", i), Status: directory.StatusActive}
		if i%7 == 0 {
			m.ForwardTo = []string{fmt.Sprintf("user%05d@corp.example", i)}
		}
		if i%10 == 0 {
			m = directory.Member{Kind: directory.KindExternal, Address: fmt.Sprintf("ext%05d@other.example", i)}
		}
		ms = append(ms, directory.PutMember{Group: "all", Member: m})
	}
	// A few writers at once: DynamoDB Local is slow at transactions, and more writers than this
	// only make them contend.
	var wg sync.WaitGroup
	errs := make(chan error, n/directory.MaxMutations)
	writers := make(chan struct{}, 4)
	for chunk := range slices.Chunk(ms, directory.MaxMutations) {
		writers <- struct{}{}
		wg.Go(func() {
			errs <- d.Apply(ctx, chunk...)
			<-writers
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	before := counter.Count()
	all, err := d.AllMembers(ctx, "all", "")
	if err != nil {
		t.Fatal(err)
	}
	requests := counter.Count() - before
	if len(all) != n {
		t.Fatalf("AllMembers returned %d members, want %d", len(all), n)
	}
	seen := map[string]bool{}
	for i, m := range all {
		if seen[m.Ref()] {
			t.Fatalf("member %s returned twice", m.Ref())
		}
		seen[m.Ref()] = true
		if i > 0 && all[i-1].Ref() >= m.Ref() {
			t.Fatalf("members out of order: %s before %s", all[i-1].Ref(), m.Ref())
		}
	}
	if m := all[len(all)-1]; m.Address != "user06999@example.com" || len(m.ForwardTo) != 0 {
		t.Errorf("last member = %+v", m)
	}
	if got, _ := d.Member(ctx, "all", "mailbox:user00007@example.com"); !slices.Equal(got.ForwardTo, []string{"user00007@corp.example"}) {
		t.Errorf("member with forwarding = %+v", got)
	}
	t.Logf("AllMembers: %d members in %d requests", len(all), requests)
	if requests > 3 {
		t.Errorf("AllMembers of %d members took %d requests, want at most 3 (1 MB pages)", n, requests)
	}

	external, err := d.AllMembers(ctx, "all", directory.KindExternal)
	if err != nil || len(external) != n/10 {
		t.Errorf("AllMembers(external) = %d members, %v; want %d", len(external), err, n/10)
	}
}

func TestDirectoryReferrers(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	target := directory.Member{Kind: directory.KindGroup, Group: "sales-apac"}
	apply(t, d,
		directory.PutMember{Group: "sales", Member: target},
		directory.PutMember{Group: "all-staff", Member: target},
		directory.PutMember{Group: "sales", Member: directory.Member{Kind: directory.KindGroup, Group: "sales-eu"}},
		directory.PutAlias{Alias: directory.Alias{Address: "apac@example.com", Target: "sales-apac@example.com",
			TargetKind: directory.KindGroup, TargetID: "sales-apac", Meta: meta(1)}},
		directory.PutAlias{Alias: directory.Alias{Address: "eu@example.com", Target: "sales-eu@example.com",
			TargetKind: directory.KindGroup, TargetID: "sales-eu", Meta: meta(1)}},
	)
	got, err := d.Referrers(ctx, "group:sales-apac")
	want := []string{"alias:apac@example.com", "group:all-staff", "group:sales"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Referrers = %v, %v; want %v", got, err, want)
	}
	apply(t, d, directory.DeleteMember{Group: "sales", Ref: target.Ref()}, directory.DeleteAlias{Address: "apac@example.com", Expect: 1})
	if got, err := d.Referrers(ctx, "group:sales-apac"); err != nil || !slices.Equal(got, []string{"group:all-staff"}) {
		t.Errorf("Referrers after removal = %v, %v; want [group:all-staff]", got, err)
	}
	if err := d.Apply(ctx, directory.PutAlias{Alias: directory.Alias{Address: "x@example.com", Target: "y@example.com"}}); !fault.Is(err, fault.Internal) {
		t.Errorf("alias without target id: error = %v, want Internal", err)
	}
}

func TestDirectoryOwnedGroups(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	putGroups(t, d, 5)
	boss := "boss@example.com"
	apply(t, d,
		directory.PutOwner{Group: "g0003", Owner: boss},
		directory.PutOwner{Group: "g0001", Owner: boss},
		directory.PutOwner{Group: "g0004", Owner: boss},
		directory.PutOwner{Group: "g0002", Owner: "other@example.com"},
		// An owner entry left by a group deleted since: not listed.
		directory.PutOwner{Group: "gone", Owner: boss},
	)
	var got []string
	cursor := ""
	for range 5 {
		page, next, err := d.OwnedGroups(ctx, boss, directory.Page{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page {
			got = append(got, g.ID)
			if g.Name != g.ID {
				t.Errorf("group %s read without its attributes: %+v", g.ID, g)
			}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if want := []string{"g0001", "g0003", "g0004"}; !slices.Equal(got, want) {
		t.Errorf("OwnedGroups = %v, want %v", got, want)
	}
	apply(t, d, directory.DeleteOwner{Group: "g0003", Owner: boss})
	if page, _, err := d.OwnedGroups(ctx, boss, directory.Page{}); err != nil || len(page) != 2 {
		t.Errorf("OwnedGroups after DeleteOwner = %v, %v; want 2 groups", page, err)
	}
	if page, next, err := d.OwnedGroups(ctx, "nobody@example.com", directory.Page{}); err != nil || len(page) != 0 || next != "" {
		t.Errorf("OwnedGroups of nobody = %v, %q, %v", page, next, err)
	}
}

func TestDirectoryAudit(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	// Three days, four entries a day at 06:00, 12:00, 18:00 and 23:59:59.999999999; actors and
	// resources alternate.
	day0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	var entries []directory.AuditEntry
	for day := range 3 {
		for i, at := range []time.Duration{6 * time.Hour, 12 * time.Hour, 18 * time.Hour, 24*time.Hour - 1} {
			n := day*4 + i
			entries = append(entries, directory.AuditEntry{
				ID: fmt.Sprintf("e%02d", n), At: day0.AddDate(0, 0, day).Add(at),
				Actor:    directory.Actor{Subject: fmt.Sprintf("sub-%d", n%2), Email: "a@example.com", Roles: []string{"admin"}},
				Action:   "group.update",
				Resource: fmt.Sprintf("group:g%d", n%3),
				Before:   json.RawMessage(fmt.Sprintf(`{"n": %d, "name":"Ünïcode"}`, n)),
				After:    json.RawMessage(fmt.Sprintf(`{"n":%d}`, n+1)),
			})
		}
	}
	// In a shuffled order, several per transaction.
	apply(t, d, directory.Record{Entry: entries[7]}, directory.Record{Entry: entries[0]}, directory.Record{Entry: entries[11]})
	for i, e := range entries {
		if i != 7 && i != 0 && i != 11 {
			apply(t, d, directory.Record{Entry: e})
		}
	}
	// A twin of e05 at the same instant sorts by id.
	twin := entries[5]
	twin.ID = "e05b"
	apply(t, d, directory.Record{Entry: twin})
	entries = slices.Insert(entries, 6, twin)

	newestFirst := func(keep func(directory.AuditEntry) bool) []string {
		var ids []string
		for i := len(entries) - 1; i >= 0; i-- {
			if keep(entries[i]) {
				ids = append(ids, entries[i].ID)
			}
		}
		return ids
	}
	all := func(q directory.AuditQuery, limit int) ([]string, []int) {
		t.Helper()
		var ids []string
		var sizes []int
		cursor := ""
		for range 50 {
			page, next, err := d.Audit(ctx, q, directory.Page{Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page))
			for _, e := range page {
				ids = append(ids, e.ID)
			}
			if cursor = next; cursor == "" {
				return ids, sizes
			}
		}
		t.Fatal("audit listing does not end")
		return nil, nil
	}
	from, to := day0, day0.AddDate(0, 0, 3).Add(-1)
	in := func(e directory.AuditEntry) bool { return !e.At.Before(from) && !e.At.After(to) }

	tests := []struct {
		name  string
		q     directory.AuditQuery
		limit int
		keep  func(directory.AuditEntry) bool
		sizes string
	}{
		{"three days, paged across days", directory.AuditQuery{From: from, To: to}, 5, in, "[5 5 3]"},
		{"three days, pages ending on day boundaries", directory.AuditQuery{From: from, To: to}, 4, in, "[4 4 4 1]"},
		{"three days, one page", directory.AuditQuery{From: from, To: to}, 0, in, "[13]"},
		{"a range inside days", directory.AuditQuery{From: day0.Add(12 * time.Hour), To: day0.AddDate(0, 0, 2).Add(6 * time.Hour)}, 3,
			func(e directory.AuditEntry) bool {
				return !e.At.Before(day0.Add(12*time.Hour)) && !e.At.After(day0.AddDate(0, 0, 2).Add(6*time.Hour))
			}, "[3 3 3]"},
		{"days before and after with nothing", directory.AuditQuery{From: from.AddDate(0, 0, -2), To: to.AddDate(0, 0, 2)}, 100, in, "[13]"},
		{"by resource", directory.AuditQuery{From: from, To: to, Resource: "group:g1"}, 2,
			func(e directory.AuditEntry) bool { return e.Resource == "group:g1" }, "[2 2]"},
		{"by actor", directory.AuditQuery{From: from, To: to, Actor: "sub-1"}, 4,
			func(e directory.AuditEntry) bool { return e.Actor.Subject == "sub-1" }, "[4 3]"},
		{"by actor in a range", directory.AuditQuery{From: day0.AddDate(0, 0, 1), To: day0.AddDate(0, 0, 2), Actor: "sub-0"}, 10,
			func(e directory.AuditEntry) bool {
				return e.Actor.Subject == "sub-0" && !e.At.Before(day0.AddDate(0, 0, 1)) && !e.At.After(day0.AddDate(0, 0, 2))
			}, "[2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sizes := all(tt.q, tt.limit)
			if want := newestFirst(tt.keep); !slices.Equal(got, want) {
				t.Errorf("ids = %v\nwant %v", got, want)
			}
			if fmt.Sprint(sizes) != tt.sizes {
				t.Errorf("page sizes = %v, want %s", sizes, tt.sizes)
			}
		})
	}

	page, _, err := d.Audit(ctx, directory.AuditQuery{From: from, To: to, Resource: "group:g2"}, directory.Page{Limit: 1})
	if err != nil || len(page) != 1 {
		t.Fatalf("Audit = %v, %v", page, err)
	}
	want := entries[len(entries)-1]
	if !reflect.DeepEqual(page[0], want) {
		t.Errorf("audit entry round trip:\n got %+v\nwant %+v", page[0], want)
	}
	if string(page[0].Before) != string(want.Before) {
		t.Errorf("before = %s, want %s byte for byte", page[0].Before, want.Before)
	}

	// A cursor stays good when the range moves on, as "the last 7 days" does between two pages:
	// the listing goes on where it was and ends at the range's new start.
	moved := []struct {
		name  string
		q     directory.AuditQuery
		moved directory.AuditQuery
		want  int
	}{
		{"days, end moved", directory.AuditQuery{From: from, To: to}, directory.AuditQuery{From: from, To: to.Add(time.Hour)}, 11},
		{"days, start moved past the cursor's entry", directory.AuditQuery{From: from, To: to},
			directory.AuditQuery{From: day0.AddDate(0, 0, 2).Add(20 * time.Hour), To: to.Add(time.Hour)}, 0},
		{"days, start moved past the cursor's day", directory.AuditQuery{From: from, To: to},
			directory.AuditQuery{From: day0.AddDate(0, 0, 3), To: to.Add(time.Hour)}, 0},
		{"resource, start moved past the cursor's entry", directory.AuditQuery{From: from, To: to, Resource: "group:g1"},
			directory.AuditQuery{From: to.Add(-time.Hour), To: to.Add(time.Hour), Resource: "group:g1"}, 0},
		{"actor, start moved a little", directory.AuditQuery{From: from, To: to, Actor: "sub-1"},
			directory.AuditQuery{From: from.Add(7 * time.Hour), To: to.Add(time.Hour), Actor: "sub-1"}, 5},
	}
	for _, tt := range moved {
		_, next, err := d.Audit(ctx, tt.q, directory.Page{Limit: 2})
		if err != nil || next == "" {
			t.Fatalf("%s: first page: next %q, %v", tt.name, next, err)
		}
		page, next, err := d.Audit(ctx, tt.moved, directory.Page{Limit: 100, Cursor: next})
		if err != nil || len(page) != tt.want || next != "" {
			t.Errorf("%s: next page = %d entries, cursor %q, %v; want %d, no cursor", tt.name, len(page), next, err, tt.want)
		}
	}
	_, next, err := d.Audit(ctx, directory.AuditQuery{From: from, To: to}, directory.Page{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	_, resourceNext, err := d.Audit(ctx, directory.AuditQuery{From: from, To: to, Resource: "group:g1"}, directory.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name  string
		q     directory.AuditQuery
		p     directory.Page
		field string
	}{
		{"end moved before the cursor's day", directory.AuditQuery{From: from, To: from}, directory.Page{Cursor: next}, "cursor"},
		{"end moved before the cursor's entry", directory.AuditQuery{From: from, To: to.Add(-10 * time.Hour), Resource: "group:g1"},
			directory.Page{Cursor: resourceNext}, "cursor"},
		{"day cursor for a resource", directory.AuditQuery{From: from, To: to, Resource: "group:g1"}, directory.Page{Cursor: next}, "cursor"},
		{"actor and resource", directory.AuditQuery{From: from, To: to, Actor: "a", Resource: "group:g1"}, directory.Page{}, "actor"},
		{"no end", directory.AuditQuery{From: from}, directory.Page{}, "to"},
		{"end before start", directory.AuditQuery{From: to, To: from}, directory.Page{}, "to"},
		{"days without a start", directory.AuditQuery{To: to}, directory.Page{}, "from"},
	}
	for _, tt := range bad {
		if _, _, err := d.Audit(ctx, tt.q, tt.p); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
			t.Errorf("%s: error = %v, want Invalid field %s", tt.name, err, tt.field)
		}
	}
}

// TestDirectoryItems checks the stored items a person sees with the AWS CLI: JSON field names, the
// key attributes docs/data-model.md lists, and the keys-only indexes.
func TestDirectoryItems(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	table, audit := devstacktest.Table(t, "DirectoryTable"), devstacktest.Table(t, "AuditTable")
	d := dynamo.NewDirectory(clients.DynamoDB, table, audit)
	_, mbx, als, _, members := sampleDirectory()
	at := time.Date(2026, 11, 23, 23, 59, 59, 5, time.FixedZone("UTC+8", 8*3600))
	apply(t, d,
		directory.PutMailbox{Mailbox: mbx},
		directory.PutAlias{Alias: als},
		directory.PutMember{Group: "sales", Member: members[2]},
		directory.ClaimAddress{Address: mbx.Address, Owner: directory.Owner{Kind: directory.KindMailbox, ID: mbx.Address}},
		directory.Remember{Replay: directory.Replay{Key: "k", Expires: time.Unix(1800000000, 1)}},
		directory.Record{Entry: directory.AuditEntry{ID: "e1", At: at, Actor: directory.Actor{Subject: "s"}, Resource: "mailbox:x@example.com",
			After: json.RawMessage(`{"a":1}`)}},
	)
	get := func(table, pk, sk string) map[string]types.AttributeValue {
		t.Helper()
		out, err := clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil || out.Item == nil {
			t.Fatalf("item %s %s: %v, %v", pk, sk, out, err)
		}
		return out.Item
	}
	attr := func(item map[string]types.AttributeValue, name string) string {
		switch v := item[name].(type) {
		case *types.AttributeValueMemberS:
			return v.Value
		case *types.AttributeValueMemberN:
			return v.Value
		case *types.AttributeValueMemberL:
			return fmt.Sprint(len(v.Value), " items")
		}
		return fmt.Sprintf("%T", item[name])
	}
	tests := []struct {
		item  map[string]types.AttributeValue
		attrs map[string]string
	}{
		{get(table, "MBX#"+mbx.Address, "META"), map[string]string{
			"address": mbx.Address, "displayName": "Ana Lim", "version": "3", "timeZone": "Asia/Kuala_Lumpur",
			"GSI3PK": "LIST#mailbox", "GSI3SK": mbx.Address}},
		{get(table, "ALS#"+als.Address, "META"), map[string]string{
			"targetId": "sales", "targetKind": "group", "GSI1PK": "REF#group:sales", "GSI1SK": "alias:" + als.Address,
			"GSI3PK": "LIST#alias"}},
		{get(table, "GRP#sales", "MEM#mailbox:"+mbx.Address), map[string]string{
			"kind": "mailbox", "address": mbx.Address, "status": "active", "forwardTo": "2 items",
			"GSI1PK": "REF#mailbox:" + mbx.Address, "GSI1SK": "group:sales"}},
		{get(table, "ADDR#"+mbx.Address, "ADDR"), map[string]string{
			"ownerKind": "mailbox", "ownerId": mbx.Address, "GSI3PK": "ADDRDOM#xn--bcher-kva.example", "GSI3SK": mbx.Address}},
		{get(table, "IDEM#k", "IDEM"), map[string]string{"expiresAt": "1800000001"}},
		{get(audit, "RES#mailbox:x@example.com", "2026-11-23T15:59:59.000000005Z#e1"), map[string]string{
			"GSI1PK": "ACTOR#s", "GSI2PK": "DAY#2026-11-23", "GSI2SK": "2026-11-23T15:59:59.000000005Z#e1", "after": `{"a":1}`}},
	}
	for _, tt := range tests {
		for name, want := range tt.attrs {
			if got := attr(tt.item, name); got != want {
				t.Errorf("%s %s: %s = %q, want %q", attr(tt.item, "PK"), attr(tt.item, "SK"), name, got, want)
			}
		}
	}
}

// BenchmarkListGroups lists 1,000 groups page by page, 100 a page: ns/op is the whole listing.
func BenchmarkListGroups(b *testing.B) {
	ctx := context.Background()
	counter := &awsclient.RequestCounter{}
	d := newDirectory(b, counter)
	putGroups(b, d, 1000)
	var requests int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		before := counter.Count()
		n, cursor := 0, ""
		for {
			page, next, err := d.Groups(ctx, directory.Page{Limit: 100, Cursor: cursor})
			if err != nil {
				b.Fatal(err)
			}
			n += len(page)
			if cursor = next; cursor == "" {
				break
			}
		}
		if n != 1000 {
			b.Fatalf("listed %d groups, want 1000", n)
		}
		requests += counter.Count() - before
	}
	b.ReportMetric(float64(requests)/float64(b.N), "aws-req/listing")
}

// TestDirectoryRefreshMember checks that copying a mailbox's status into a membership never brings
// back a membership that is gone.
func TestDirectoryRefreshMember(t *testing.T) {
	ctx := context.Background()
	d := newDirectory(t, nil)
	m := directory.Member{Kind: directory.KindMailbox, Address: "ana@example.com", Status: directory.StatusActive}
	apply(t, d, directory.PutMember{Group: "sales", Member: m})

	m.Status, m.ForwardTo = directory.StatusClosed, []string{"ana@corp.example"}
	apply(t, d, directory.RefreshMember{Group: "sales", Member: m})
	got, err := d.Member(ctx, "sales", m.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != directory.StatusClosed || len(got.ForwardTo) != 1 {
		t.Errorf("refreshed member = %+v, want closed with its forwarding", got)
	}

	err = d.Apply(ctx, directory.RefreshMember{Group: "support", Member: m})
	var cf *directory.ConditionFailed
	if !fault.Is(err, fault.Conflict) || !errors.As(err, &cf) || cf.Index != 0 {
		t.Fatalf("refreshing a membership that does not exist: %v, want Conflict at mutation 0", err)
	}
	if _, err := d.Member(ctx, "support", m.Ref()); !fault.Is(err, fault.NotFound) {
		t.Errorf("after a refused refresh the membership exists: %v", err)
	}
}

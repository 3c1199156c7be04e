package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

var transferNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newTransferService() (*Service, *memStore) {
	now := func() time.Time { return transferNow }
	st := newMemStore(now)
	var n atomic.Int64
	return &Service{Store: st, Audit: st, Now: now, NewID: func() string { return fmt.Sprintf("e%06d", n.Add(1)) }}, st
}

var (
	transferAdmin   = Call{Principal: Principal{Subject: "admin-1", Email: "it@example.com", Roles: []string{RoleAdmin}}, RequestID: "req-import"}
	transferAuditor = Call{Principal: Principal{Subject: "auditor-1", Roles: []string{RoleAuditor}}}
)

// readDocument decodes a JSON document strictly, as the admin API does.
func readDocument(t *testing.T, body []byte) Document {
	t.Helper()
	var doc Document
	if err := Decode("test", body, &doc); err != nil {
		t.Fatalf("decode document: %v", err)
	}
	return doc
}

func sampleDocument(t *testing.T) Document {
	t.Helper()
	b, err := os.ReadFile("testdata/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	return readDocument(t, b)
}

// importInto imports doc into a new store and returns the service.
func importInto(t *testing.T, doc Document) (*Service, *memStore, ImportReport) {
	t.Helper()
	s, st := newTransferService()
	r, err := s.Import(context.Background(), transferAdmin, doc, false)
	if err != nil {
		t.Fatalf("import: %v (%v)", err, fault.DetailsOf(err))
	}
	return s, st, r
}

func export(t *testing.T, s *Service) Document {
	t.Helper()
	doc, err := s.Export(context.Background(), transferAdmin)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return doc
}

// withoutMeta drops what differs between two stores holding the same directory: versions grow
// with the writes that made a record, and times with when they were made.
func withoutMeta(d Document) Document {
	out := Document{}
	for _, x := range d.Domains {
		x.Meta = Meta{}
		out.Domains = append(out.Domains, x)
	}
	for _, x := range d.Mailboxes {
		x.Meta = Meta{}
		out.Mailboxes = append(out.Mailboxes, x)
	}
	for _, x := range d.Aliases {
		x.Meta = Meta{}
		out.Aliases = append(out.Aliases, x)
	}
	for _, x := range d.Groups {
		x.Meta = Meta{}
		out.Groups = append(out.Groups, x)
	}
	return out
}

func sameDirectory(t *testing.T, got, want Document) {
	t.Helper()
	g, w := withoutMeta(got), withoutMeta(want)
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", " ")
		wj, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("directories differ\ngot:  %s\nwant: %s", gj, wj)
	}
}

func fieldErrorsOf(t *testing.T, err error) []FieldError {
	t.Helper()
	if !fault.Is(err, fault.Invalid) {
		t.Fatalf("err = %v, want an Invalid fault", err)
	}
	list, ok := fault.DetailsOf(err)["errors"].([]FieldError)
	if !ok || len(list) == 0 {
		t.Fatalf("details = %#v, want a list of errors", fault.DetailsOf(err))
	}
	if got := fault.FieldOf(err); got != list[0].Field {
		t.Errorf("Field = %q, want the first error's, %q", got, list[0].Field)
	}
	return list
}

func fields(list []FieldError) []string {
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Field
	}
	return out
}

func TestImportSample(t *testing.T) {
	s, st, r := importInto(t, sampleDocument(t))
	if r.DryRun || r.Created != 16 || r.Updated != 0 || r.Unchanged != 0 || len(r.Results) != 16 {
		t.Errorf("report = %+v, want 16 created", r)
	}
	wantOrder := []string{"domain:example.com", "domain:xn--bcher-kva.example", "mailbox:ana@example.com",
		"mailbox:boss@example.com", "mailbox:bob@example.com", "mailbox:inbox@example.com",
		"mailbox:leser@xn--bcher-kva.example", "group:sales", "group:sales-apac", "group:board",
		"alias:info@example.com", "alias:a.lim@example.com", "member:sales/group:sales-apac",
		"member:sales/mailbox:bob@example.com", "member:sales-apac/mailbox:ana@example.com",
		"member:sales-apac/external:partner@other.example"}
	var got []string
	for _, x := range r.Results {
		got = append(got, x.Kind+":"+x.ID)
	}
	if !slices.Equal(got, wantOrder) {
		t.Errorf("results\n got %v\nwant %v", got, wantOrder)
	}

	ctx := context.Background()
	d, _ := st.Domain(ctx, "example.com")
	if d.UnknownRecipients != UnknownCatchAll || d.CatchAll != "inbox@example.com" {
		t.Errorf("domain = %+v, want catch-all to inbox@example.com", d)
	}
	ana, _ := st.Mailbox(ctx, "ana@example.com")
	if ana.Manager != "boss@example.com" || ana.TimeZone != "Asia/Kuala_Lumpur" || !slices.Equal(ana.ForwardTo, []string{"ana.lim@corp.example"}) {
		t.Errorf("ana = %+v", ana)
	}
	g, _ := st.Group(ctx, "sales-apac")
	if g.MemberCount != 2 || !slices.Equal(g.Posting.Allow, []string{"@partner.example", "ceo@other.example"}) {
		t.Errorf("sales-apac = %+v", g)
	}
	a, _ := st.Alias(ctx, "info@example.com")
	if a.TargetKind != KindGroup || a.TargetID != "sales" {
		t.Errorf("alias = %+v", a)
	}
	e, err := s.Expand(ctx, transferAdmin, "sales")
	if err != nil || !slices.Equal(e.Addresses, []string{"ana.lim@corp.example", "partner@other.example"}) {
		t.Errorf("expand = %+v, %v", e, err)
	}

	// Every change is audited on its own, by the caller, with the request id; the catch-all
	// domain took two writes, and so did Ana, whose manager comes after her in the document.
	actions := map[string]int{}
	for _, e := range st.auditSince(0) {
		actions[e.Action]++
		if e.Actor.Subject != "admin-1" || e.RequestID != "req-import" {
			t.Errorf("audit entry %+v: wrong actor or request", e)
		}
	}
	want := map[string]int{"domain.create": 2, "domain.update": 1, "mailbox.create": 5, "group.create": 3,
		"alias.create": 2, "group.add-member": 4, "mailbox.update": 1}
	if !reflect.DeepEqual(actions, want) {
		t.Errorf("audit actions = %v, want %v", actions, want)
	}
}

func TestImportExportRoundTrip(t *testing.T) {
	a, _, _ := importInto(t, sampleDocument(t))
	first := export(t, a)

	body, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	b, _, r := importInto(t, readDocument(t, body))
	if r.Created != 16 {
		t.Errorf("second store: %+v", r)
	}
	sameDirectory(t, export(t, b), first)

	if len(first.Groups) != 3 || first.Groups[0].ID != "board" || first.Groups[0].Members == nil {
		t.Errorf("groups = %+v, want board first with an empty member list", first.Groups)
	}
	if !bytes.Contains(body, []byte(`"members":[]`)) || bytes.Contains(body, []byte(`"status":"active","forwardTo"`)) {
		t.Errorf("export JSON = %s", body)
	}
	for _, g := range first.Groups {
		for _, m := range g.Members {
			if m.Status != "" {
				t.Errorf("member %+v carries a status: the mailbox has it", m)
			}
		}
	}
}

func TestImportSameTwiceChangesNothing(t *testing.T) {
	doc := sampleDocument(t)
	s, st, _ := importInto(t, doc)
	audit, applies := st.auditLen(), st.callCount("Apply")

	r, err := s.Import(context.Background(), transferAdmin, doc, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Created != 0 || r.Updated != 0 || r.Unchanged != 16 {
		t.Errorf("report = %+v, want everything unchanged", r)
	}
	for _, x := range r.Results {
		if x.Outcome != OutcomeUnchanged {
			t.Errorf("%s %s: %s", x.Kind, x.ID, x.Outcome)
		}
	}
	if st.auditLen() != audit || st.callCount("Apply") != applies {
		t.Errorf("a second import wrote: %d audit entries, %d applies", st.auditLen()-audit, st.callCount("Apply")-applies)
	}
	// The exported document, read-only fields and all, is the same directory too.
	r, err = s.Import(context.Background(), transferAdmin, export(t, s), false)
	if err != nil || r.Unchanged != 16 || st.auditLen() != audit {
		t.Errorf("re-import of the export: %+v, %v", r, err)
	}
}

func TestImportUpdates(t *testing.T) {
	s, st, _ := importInto(t, sampleDocument(t))
	ctx := context.Background()
	doc := export(t, s)
	doc.Domains[0].UnknownRecipients, doc.Domains[0].CatchAll = UnknownBounce, "" // example.com
	doc.Mailboxes[0].DisplayName = "Ana Lim-Tan"                                  // ana
	doc.Mailboxes[0].ForwardTo = nil
	doc.Groups[2].Posting = Posting{Policy: PostMembers}                               // sales-apac: allow list dropped
	doc.Groups[1].Members = []Member{{Kind: KindMailbox, Address: "boss@example.com"}} // sales
	doc.Aliases[0].Target = "boss@example.com"                                         // a.lim
	doc.Mailboxes = append(doc.Mailboxes, Mailbox{Address: "new@example.com", Manager: "ana@example.com"})
	audit := st.auditLen()

	r, err := s.Import(ctx, transferAdmin, doc, false)
	if err != nil {
		t.Fatalf("import: %v %v", err, fault.DetailsOf(err))
	}
	if r.Created != 2 || r.Updated != 4 || r.Unchanged != 10 {
		t.Errorf("report = %+v, want 2 created, 4 updated, 10 unchanged", r)
	}
	outcomes := map[string]string{}
	for _, x := range r.Results {
		outcomes[x.Kind+":"+x.ID] = x.Outcome
	}
	for k, want := range map[string]string{
		"domain:example.com": OutcomeUpdated, "mailbox:ana@example.com": OutcomeUpdated,
		"group:sales-apac": OutcomeUpdated, "alias:a.lim@example.com": OutcomeUpdated,
		"mailbox:new@example.com": OutcomeCreated, "member:sales/mailbox:boss@example.com": OutcomeCreated,
		"group:sales": OutcomeUnchanged,
	} {
		if outcomes[k] != want {
			t.Errorf("%s: %s, want %s", k, outcomes[k], want)
		}
	}

	d, _ := st.Domain(ctx, "example.com")
	ana, _ := st.Mailbox(ctx, "ana@example.com")
	g, _ := st.Group(ctx, "sales-apac")
	a, _ := st.Alias(ctx, "a.lim@example.com")
	if d.UnknownRecipients != UnknownBounce || d.CatchAll != "" {
		t.Errorf("domain = %+v", d)
	}
	if ana.DisplayName != "Ana Lim-Tan" || ana.ForwardTo != nil || ana.Manager != "boss@example.com" {
		t.Errorf("ana = %+v", ana)
	}
	if g.Posting.Policy != PostMembers || g.Posting.Allow != nil || g.MemberCount != 2 || g.Expires != "2027-03-31" {
		t.Errorf("sales-apac = %+v", g)
	}
	if a.Target != "boss@example.com" || a.TargetKind != KindMailbox {
		t.Errorf("alias = %+v", a)
	}
	// One audited change per created or updated record, with the before and after of each update.
	entries := st.auditSince(audit)
	if len(entries) != 6 {
		t.Errorf("%d audit entries, want 6", len(entries))
	}
	for _, e := range entries {
		if e.Action == "mailbox.update" && e.Resource == "mailbox:ana@example.com" && (e.Before == nil || e.After == nil) {
			t.Errorf("update entry without before and after: %+v", e)
		}
	}
}

func TestImportOnlyAddsMembers(t *testing.T) {
	s, st, _ := importInto(t, sampleDocument(t))
	doc := Document{Groups: []GroupDocument{{
		Group:   Group{ID: "sales", Name: "Sales", Type: "department", Description: "Sales team; APAC and EU", Addresses: []string{"sales@example.com"}, Owners: []string{"boss@example.com"}, Posting: Posting{Policy: PostMembers}},
		Members: []Member{{Kind: KindMailbox, Address: "ana@example.com"}},
	}}}
	r, err := s.Import(context.Background(), transferAdmin, doc, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Created != 1 || r.Unchanged != 1 {
		t.Errorf("report = %+v", r)
	}
	ms, _ := st.AllMembers(context.Background(), "sales", "")
	var refs []string
	for _, m := range ms {
		refs = append(refs, m.Ref())
	}
	want := []string{"group:sales-apac", "mailbox:ana@example.com", "mailbox:bob@example.com"}
	if !slices.Equal(refs, want) {
		t.Errorf("members = %v, want %v (import adds, it does not remove)", refs, want)
	}
}

func TestImportDryRun(t *testing.T) {
	s, st := newTransferService()
	r, err := s.Import(context.Background(), transferAdmin, sampleDocument(t), true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.DryRun || r.Created != 16 || len(r.Results) != 16 {
		t.Errorf("report = %+v", r)
	}
	if st.callCount("Apply") != 0 || st.auditLen() != 0 {
		t.Errorf("a dry run wrote")
	}

	// Against a directory that has it all, a dry run says so.
	s, st, _ = importInto(t, sampleDocument(t))
	doc := sampleDocument(t)
	doc.Mailboxes[1].DisplayName = "Boss"
	applies := st.callCount("Apply")
	r, err = s.Import(context.Background(), transferAdmin, doc, true)
	if err != nil || r.Updated != 1 || r.Unchanged != 15 || st.callCount("Apply") != applies {
		t.Errorf("dry run = %+v, %v", r, err)
	}
}

func TestImportInvalidReportsEverything(t *testing.T) {
	s, st, _ := importInto(t, sampleDocument(t))
	audit, applies := st.auditLen(), st.callCount("Apply")
	doc := readDocument(t, []byte(`{
	  "domains": [{"name": "new.example", "unknownRecipients": "sometimes"}, {"name": "other.test"}],
	  "mailboxes": [
	    {"address": "zoe@new.example"},
	    {"address": "max@nowhere.example", "manager": "ghost@example.com"},
	    {"address": "ida@new.example", "timeZone": "Mars/Olympus"},
	    {"address": "ZOE@new.example"},
	    {"address": "info@example.com"}
	  ],
	  "aliases": [{"address": "help@new.example", "target": "a.lim@example.com"}, {"address": "x@new.example", "target": "nobody@new.example"}],
	  "groups": [
	    {"id": "ops", "name": "Ops", "owners": ["ghost@example.com"], "addresses": ["ops@unknown.example"],
	     "members": [{"kind": "mailbox", "address": "ghost@example.com"}, {"kind": "group", "group": "nope"},
	                 {"kind": "external", "address": "someone@example.com"}, {"kind": "robot", "address": "r@x.example"},
	                 {"kind": "mailbox", "address": "zoe@new.example"}, {"kind": "mailbox", "address": "zoe@new.example"}]},
	    {"name": "", "members": []}
	  ]
	}`))
	_, err := s.Import(context.Background(), transferAdmin, doc, false)
	got := fieldErrorsOf(t, err)
	want := []string{
		"domains.0.unknownRecipients",
		"mailboxes.2.timeZone",
		"mailboxes.3.address", // listed twice
		"groups.0.members.3.kind",
		"groups.0.members.5", // listed twice
		"groups.1.name",
		"mailboxes.1.address", // domain not served
		"mailboxes.1.manager",
		"mailboxes.4.address", // in use by an alias
		"groups.0.addresses.0",
		"groups.0.owners.0",
		"aliases.0.target", // an alias
		"aliases.1.target", // nobody
		"groups.0.members.0.address",
		"groups.0.members.1.group",
		"groups.0.members.2.address", // external on a served domain
	}
	if !slices.Equal(fields(got), want) {
		t.Errorf("errors\n got %v\nwant %v", fields(got), want)
		for _, e := range got {
			t.Logf("%s: %s", e.Field, e.Detail)
		}
	}
	for _, e := range got {
		if e.Detail == "" {
			t.Errorf("%s has no detail", e.Field)
		}
	}
	if msg := fault.MessageOf(err); !strings.Contains(msg, "15 more problems") {
		t.Errorf("message = %q", msg)
	}
	if st.callCount("Apply") != applies || st.auditLen() != audit {
		t.Errorf("an invalid import wrote")
	}
	// The problem document shows the list as JSON.
	b, _ := json.Marshal(fault.DetailsOf(err))
	if !bytes.Contains(b, []byte(`{"field":"mailboxes.2.timeZone","detail":"\"Mars/Olympus\" is not an IANA time zone"}`)) {
		t.Errorf("details JSON = %s", b)
	}
}

func TestImportCycles(t *testing.T) {
	group := func(id string, members ...string) GroupDocument {
		g := GroupDocument{Group: Group{ID: id, Name: id}, Members: []Member{}}
		for _, m := range members {
			g.Members = append(g.Members, Member{Kind: KindGroup, Group: m})
		}
		return g
	}
	tests := []struct {
		name       string
		groups     []GroupDocument
		wantField  string
		wantDetail string
	}{
		{"within the document", []GroupDocument{group("x", "y"), group("y", "z"), group("z", "x")},
			"groups.2.members.0.group", "adding x to z would make a cycle: z → x → y → z"},
		{"itself", []GroupDocument{group("x", "x")},
			"groups.0.members.0.group", "adding x to x would make a cycle: x → x"},
		{"with the directory", []GroupDocument{group("c", "a")}, // the directory has a ⊃ b ⊃ c
			"groups.0.members.0.group", "adding a to c would make a cycle: c → a → b → c"},
		{"directory group made a member", []GroupDocument{group("a", "b"), group("c", "d"), group("d", "a")},
			"groups.2.members.0.group", "adding a to d would make a cycle: d → a → b → c → d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st := newTransferService()
			ctx := context.Background()
			for _, id := range []string{"a", "b", "c"} {
				if _, err := s.CreateGroup(ctx, transferAdmin, Group{ID: id, Name: id}); err != nil {
					t.Fatal(err)
				}
			}
			for _, e := range [][2]string{{"a", "b"}, {"b", "c"}} {
				if _, _, err := s.AddMember(ctx, transferAdmin, e[0], Member{Kind: KindGroup, Group: e[1]}); err != nil {
					t.Fatal(err)
				}
			}
			applies := st.callCount("Apply")
			_, err := s.Import(ctx, transferAdmin, Document{Groups: tt.groups}, false)
			got := fieldErrorsOf(t, err)
			if len(got) != 1 || got[0].Field != tt.wantField || got[0].Detail != tt.wantDetail {
				t.Errorf("errors = %+v, want %s: %s", got, tt.wantField, tt.wantDetail)
			}
			if st.callCount("Apply") != applies {
				t.Errorf("a refused import wrote")
			}
		})
	}

	t.Run("no cycle", func(t *testing.T) {
		s, _ := newTransferService()
		doc := Document{Groups: []GroupDocument{group("x", "y", "z"), group("y", "z"), group("z")}}
		if r, err := s.Import(context.Background(), transferAdmin, doc, false); err != nil || r.Created != 6 {
			t.Errorf("diamond: %+v, %v", r, err)
		}
	})
}

func TestImportForbidden(t *testing.T) {
	s, st := newTransferService()
	invalid := Document{Mailboxes: []Mailbox{{Address: "not an address"}}}
	calls := []Call{
		transferAuditor,
		{Principal: Principal{Subject: "gm", Email: "boss@example.com", Roles: []string{RoleGroupManager}}},
		{Principal: Principal{Subject: "emp", Email: "ana@example.com", Roles: []string{RoleEmployee}}},
		{Principal: Principal{Subject: "ro", Roles: []string{RoleAdmin}, HasScopes: true, Scopes: []string{ScopeRead}}},
		{},
	}
	for _, c := range calls {
		for _, dry := range []bool{false, true} {
			if _, err := s.Import(context.Background(), c, invalid, dry); !fault.Is(err, fault.Forbidden) {
				t.Errorf("%+v dryRun %v: err = %v, want Forbidden before validation", c.Principal, dry, err)
			}
		}
	}
	if n := st.callCount("Domain") + st.callCount("Mailbox") + st.callCount("Apply"); n != 0 {
		t.Errorf("a forbidden import read or wrote the store %d times", n)
	}
}

func TestExportForbidden(t *testing.T) {
	s, _ := newTransferService()
	ctx := context.Background()
	for _, c := range []Call{
		{Principal: Principal{Subject: "gm", Email: "boss@example.com", Roles: []string{RoleGroupManager}}},
		{Principal: Principal{Subject: "emp", Email: "ana@example.com", Roles: []string{RoleEmployee}}},
		{Principal: Principal{Subject: "wo", Roles: []string{RoleAuditor}, HasScopes: true, Scopes: []string{ScopeWrite}}},
	} {
		if _, err := s.Export(ctx, c); !fault.Is(err, fault.Forbidden) {
			t.Errorf("Export by %+v: %v, want Forbidden", c.Principal, err)
		}
		if err := s.ExportCSV(ctx, c, CSVMailboxes, &bytes.Buffer{}); !fault.Is(err, fault.Forbidden) {
			t.Errorf("ExportCSV by %+v: %v, want Forbidden", c.Principal, err)
		}
	}
	if _, err := s.Export(ctx, transferAuditor); err != nil {
		t.Errorf("auditor: %v", err)
	}
	if err := s.ExportCSV(ctx, transferAuditor, "people", &bytes.Buffer{}); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "kind" {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestExportPages(t *testing.T) {
	s, st := newTransferService()
	st.domains["example.com"] = Domain{Name: "example.com", UnknownRecipients: UnknownBounce, Meta: Meta{Version: 1}}
	for i := range 2500 {
		a := fmt.Sprintf("user%04d@example.com", i)
		st.mailboxes[a] = Mailbox{Address: a, Status: StatusActive, Locale: "en", TimeZone: "UTC", Meta: Meta{Version: 1}}
	}
	doc, err := s.Export(context.Background(), transferAuditor)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Mailboxes) != 2500 || doc.Mailboxes[2499].Address != "user2499@example.com" {
		t.Errorf("%d mailboxes", len(doc.Mailboxes))
	}
	if n := st.callCount("Mailboxes"); n != 3 {
		t.Errorf("%d reads of the mailboxes, want 3 pages", n)
	}
	var buf bytes.Buffer
	if err := s.ExportCSV(context.Background(), transferAuditor, CSVMailboxes, &buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 2501 {
		t.Errorf("%d CSV lines, want 2501", n)
	}
}

// TestImportReadsWhatItNeeds checks that an import reads the records it names, not listings of
// the directory.
func TestImportReadsWhatItNeeds(t *testing.T) {
	s, st, _ := importInto(t, sampleDocument(t))
	st.resetCalls()
	if _, err := s.Import(context.Background(), transferAdmin, sampleDocument(t), false); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"Domains", "Mailboxes", "Aliases", "Groups", "Members", "Referrers"} {
		if n := st.callCount(m); n != 0 {
			t.Errorf("%s called %d times", m, n)
		}
	}
	if n := st.callCount("Mailbox"); n > 5 {
		t.Errorf("Mailbox called %d times for 5 mailboxes", n)
	}
}

func TestImportIgnoresIdempotencyOfTheCall(t *testing.T) {
	s, st := newTransferService()
	c := transferAdmin
	c.IfMatch = 7
	c.Idempotency = &Idempotency{Key: "k", Fingerprint: "f", Render: func(any) Replay { return Replay{Status: 201} }}
	if _, err := s.Import(context.Background(), c, sampleDocument(t), false); err != nil {
		t.Fatal(err)
	}
	for _, ms := range st.applied {
		for _, m := range ms {
			if _, ok := m.(Remember); ok {
				t.Fatal("a record's write remembered the import's idempotency key")
			}
		}
	}
}

func TestImportManagers(t *testing.T) {
	// Managers further on in the document, and managers of each other.
	doc := Document{
		Domains: []Domain{{Name: "example.com"}},
		Mailboxes: []Mailbox{
			{Address: "a@example.com", Manager: "b@example.com"},
			{Address: "b@example.com", Manager: "a@example.com"},
			{Address: "c@example.com", Manager: "d@example.com"},
			{Address: "d@example.com"},
		},
	}
	_, st, r := importInto(t, doc)
	if r.Created != 5 {
		t.Errorf("report = %+v", r)
	}
	for addr, want := range map[string]string{"a@example.com": "b@example.com", "b@example.com": "a@example.com", "c@example.com": "d@example.com"} {
		if m, _ := st.Mailbox(context.Background(), addr); m.Manager != want {
			t.Errorf("%s manager = %q, want %q", addr, m.Manager, want)
		}
	}
}

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name, kind, in string
		want           Document
	}{
		{"domains", CSVDomains, "name,unknownRecipients,catchAll\nexample.com,catch-all,inbox@example.com\nother.example,,\n",
			Document{Domains: []Domain{{Name: "example.com", UnknownRecipients: UnknownCatchAll, CatchAll: "inbox@example.com"}, {Name: "other.example"}}}},
		{"mailboxes in another order, quoted, with lists", CSVMailboxes,
			"address,forwardTo,displayName,status,manager,locale,timeZone\n" +
				`ana@example.com,"a@x.example; ""b;c""@y.example;",` + `"Lim, Ana ""AL""",,boss@example.com,ms-MY,Asia/Kuala_Lumpur` + "\n",
			Document{Mailboxes: []Mailbox{{Address: "ana@example.com", ForwardTo: []string{"a@x.example", `"b;c"@y.example`},
				DisplayName: `Lim, Ana "AL"`, Manager: "boss@example.com", Locale: "ms-MY", TimeZone: "Asia/Kuala_Lumpur"}}}},
		{"aliases with a BOM and CRLF", CSVAliases, "\ufeffaddress,target\r\ninfo@example.com,sales@example.com\r\n",
			Document{Aliases: []Alias{{Address: "info@example.com", Target: "sales@example.com"}}}},
		{"groups", CSVGroups, "id,name,type,description,addresses,owners,postingPolicy,allow,moderators,expires\n" +
			`sales,Sales,department,"Sales; APAC, EU",sales@example.com;vertrieb@example.com,boss@example.com,allow-list,@partner.example;ceo@x.example,,2027-03-31` + "\n",
			Document{Groups: []GroupDocument{{Group: Group{ID: "sales", Name: "Sales", Type: "department", Description: "Sales; APAC, EU",
				Addresses: []string{"sales@example.com", "vertrieb@example.com"}, Owners: []string{"boss@example.com"},
				Posting: Posting{Policy: PostAllowList, Allow: []string{"@partner.example", "ceo@x.example"}}, Expires: "2027-03-31"}}}}},
		{"members, grouped by group", CSVMembers, " group , kind,member\nsales,mailbox,ana@example.com\nops,external,x@y.example\nsales,group,sales-apac\n",
			Document{Groups: []GroupDocument{
				{Group: Group{ID: "sales"}, Members: []Member{{Kind: KindMailbox, Address: "ana@example.com"}, {Kind: KindGroup, Group: "sales-apac"}}},
				{Group: Group{ID: "ops"}, Members: []Member{{Kind: KindExternal, Address: "x@y.example"}}},
			}}},
		{"header only", CSVDomains, "name,unknownRecipients,catchAll\n", Document{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCSV(tt.kind, strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseCSV: %v %v", err, fault.DetailsOf(err))
			}
			got.src = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseCSVExcelFile(t *testing.T) {
	f, err := os.Open("testdata/mailboxes-excel.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := ParseCSV(CSVMailboxes, f)
	if err != nil {
		t.Fatalf("ParseCSV: %v", err)
	}
	want := []Mailbox{
		{Address: "ana@example.com", DisplayName: `Lim, Ana "AL"`, Status: "active", ForwardTo: []string{"ana.lim@corp.example", "ana@home.example"}, Locale: "de-DE", TimeZone: "Europe/Berlin"},
		{Address: "bob@example.com", DisplayName: "Bob\nSecond line", Status: "suspended", Manager: "ana@example.com", Locale: "en", TimeZone: "UTC"},
	}
	if !reflect.DeepEqual(doc.Mailboxes, want) {
		t.Errorf("got  %+v\nwant %+v", doc.Mailboxes, want)
	}

	// Import names the line each record starts on: Bob's starts on line 3 and spans two.
	s, _ := newTransferService()
	if _, err := s.CreateDomain(context.Background(), transferAdmin, Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Import(context.Background(), transferAdmin, doc, false)
	got := fieldErrorsOf(t, err)
	if want := []string{"line 3.displayName"}; !slices.Equal(fields(got), want) {
		t.Errorf("errors = %+v, want %v", got, want)
	}
}

func TestParseCSVErrors(t *testing.T) {
	tests := []struct {
		name, kind, in string
		want           []string
	}{
		{"unknown kind", "people", "a\n", nil},
		{"empty", CSVAliases, "", []string{"line 1"}},
		{"unknown and missing columns", CSVAliases, "address,targt,note\n", []string{"line 1.targt", "line 1.note", "line 1.target"}},
		{"column twice", CSVDomains, "name,name,unknownRecipients,catchAll\n", []string{"line 1.name"}},
		{"column without a name", CSVAliases, "address,target,\n", []string{"line 1"}},
		{"wrong number of fields on two lines", CSVAliases, "address,target\na@x.example,b@x.example\nc@x.example\nd@x.example,e@x.example,f\n",
			[]string{"line 3", "line 4"}},
		{"bare quote", CSVAliases, "address,target\na@x.example,b@x.example\nc\"d@x.example,e@x.example\n", []string{"line 3"}},
		{"unterminated quote", CSVAliases, "address,target\n\"a@x.example,b@x.example\n", []string{"line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCSV(tt.kind, strings.NewReader(tt.in))
			if tt.want == nil {
				if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "kind" {
					t.Errorf("err = %v, want invalid kind", err)
				}
				return
			}
			got := fieldErrorsOf(t, err)
			if !slices.Equal(fields(got), tt.want) {
				t.Errorf("errors = %+v, want fields %v", got, tt.want)
			}
		})
	}
}

func TestImportCSVNamesLines(t *testing.T) {
	s, _, _ := importInto(t, sampleDocument(t))
	tests := []struct {
		name, kind, in string
		want           []string
	}{
		{"mailboxes", CSVMailboxes, "address,displayName,status,forwardTo,manager,locale,timeZone\n" +
			"zoe@example.com,Zoe,,zoe@x.example;not-an-address,,,\n" +
			"max@example.com,Max,gone,,,,Mars/Olympus\n" +
			"ida@example.com,Ida,,,ghost@example.com,,\n",
			[]string{"line 2.forwardTo.1", "line 3.status", "line 4.manager"}},
		{"groups", CSVGroups, "id,name,type,description,addresses,owners,postingPolicy,allow,moderators,expires\n" +
			"g1,G1,,,,,allow-list,,,\n" +
			"g2,G2,,,,ghost@example.com,moderated,,,someday\n" +
			"g3,G3,,,,,,,ghost@example.com,\n",
			[]string{"line 2.allow", "line 3.expires", "line 4.moderators.0"}},
		{"members", CSVMembers, "group,kind,member\n" +
			"sales,mailbox,ana@example.com\n" +
			"nosuch,mailbox,ana@example.com\n" +
			"sales,mailbox,ghost@example.com\n" +
			"sales,group,sales\n" +
			"sales,robot,r2@example.com\n",
			[]string{"line 3.group", "line 4.member", "line 5.member", "line 6.kind"}},
		{"domains whose catch-all is not there yet", CSVDomains, "name,unknownRecipients,catchAll\nnew.example,catch-all,all@new.example\n",
			[]string{"line 2.catchAll"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := ParseCSV(tt.kind, strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseCSV: %v", err)
			}
			_, err = s.Import(context.Background(), transferAdmin, doc, true)
			got := fieldErrorsOf(t, err)
			if !slices.Equal(fields(got), tt.want) {
				t.Errorf("errors = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestImportMembersCSV(t *testing.T) {
	s, st, _ := importInto(t, sampleDocument(t))
	doc, err := ParseCSV(CSVMembers, strings.NewReader("group,kind,member\nboard,mailbox,ana@example.com\nsales,mailbox,bob@example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Import(context.Background(), transferAdmin, doc, false)
	if err != nil {
		t.Fatalf("import: %v %v", err, fault.DetailsOf(err))
	}
	want := []ImportResult{{"member", "board/mailbox:ana@example.com", OutcomeCreated}, {"member", "sales/mailbox:bob@example.com", OutcomeUnchanged}}
	if !reflect.DeepEqual(r.Results, want) {
		t.Errorf("results = %+v, want %+v", r.Results, want)
	}
	if g, _ := st.Group(context.Background(), "board"); g.Name != "Board" || g.MemberCount != 1 {
		t.Errorf("a members CSV changed the group: %+v", g)
	}
}

func TestExportCSVRoundTrip(t *testing.T) {
	a, _, _ := importInto(t, sampleDocument(t))
	ctx := context.Background()
	csvs := map[string]string{}
	for _, kind := range csvKinds {
		var buf bytes.Buffer
		if err := a.ExportCSV(ctx, transferAuditor, kind, &buf); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		csvs[kind] = buf.String()
	}
	wantMailbox := "ana@example.com,Ana Lim,active,ana.lim@corp.example,boss@example.com,ms-MY,Asia/Kuala_Lumpur\n"
	if !strings.HasPrefix(csvs[CSVMailboxes], "address,displayName,status,forwardTo,manager,locale,timeZone\n"+wantMailbox) {
		t.Errorf("mailboxes CSV:\n%s", csvs[CSVMailboxes])
	}
	if !strings.Contains(csvs[CSVGroups], `sales-apac,Sales APAC,project,,,,allow-list,@partner.example;ceo@other.example,,2027-03-31`) {
		t.Errorf("groups CSV:\n%s", csvs[CSVGroups])
	}

	// A catch-all address can only be set once it exists: import the domains without it first,
	// and again at the end.
	b, _ := newTransferService()
	steps := []struct{ kind, in string }{
		{CSVDomains, strings.ReplaceAll(csvs[CSVDomains], "catch-all,inbox@example.com", "bounce,")},
		{CSVMailboxes, csvs[CSVMailboxes]},
		{CSVGroups, csvs[CSVGroups]},
		{CSVAliases, csvs[CSVAliases]},
		{CSVMembers, csvs[CSVMembers]},
		{CSVDomains, csvs[CSVDomains]},
	}
	for _, step := range steps {
		doc, err := ParseCSV(step.kind, strings.NewReader(step.in))
		if err != nil {
			t.Fatalf("parse %s: %v", step.kind, err)
		}
		if _, err := b.Import(ctx, transferAdmin, doc, false); err != nil {
			t.Fatalf("import %s: %v %v", step.kind, err, fault.DetailsOf(err))
		}
	}
	sameDirectory(t, export(t, b), export(t, a))
}

func TestExportCSVForwardToRoundTrip(t *testing.T) {
	s, st := newTransferService()
	ctx := context.Background()
	if _, err := s.CreateDomain(ctx, transferAdmin, Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	want, err := s.CreateMailbox(ctx, transferAdmin, Mailbox{Address: "ana@example.com", DisplayName: "Ana; \"AL\", Lim",
		ForwardTo: []string{"ana.lim@corp.example", `"odd;one"@home.example`, "a@b.example"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.ExportCSV(ctx, transferAdmin, CSVMailboxes, &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := ParseCSV(CSVMailboxes, &buf)
	if err != nil {
		t.Fatal(err)
	}
	st.mailboxes = map[string]Mailbox{}
	st.claims = map[string]Owner{}
	r, err := s.Import(ctx, transferAdmin, doc, false)
	if err != nil || r.Created != 1 {
		t.Fatalf("import: %+v %v", r, err)
	}
	got, _ := st.Mailbox(ctx, "ana@example.com")
	got.Meta, want.Meta = Meta{}, Meta{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" ; ", nil},
		{"a@x.example", []string{"a@x.example"}},
		{"a@x.example; b@y.example;", []string{"a@x.example", "b@y.example"}},
		{`"a;b"@x.example;"c\";d"@y.example`, []string{`"a;b"@x.example`, `"c\";d"@y.example`}},
	}
	for _, tt := range tests {
		if got := splitList(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPatchFor(t *testing.T) {
	before := Group{ID: "g", Name: "G", Type: "other", Posting: Posting{Policy: PostAllowList, Allow: []string{"@x.example"}}, MemberCount: 3, Meta: Meta{Version: 4}}
	after := Group{ID: "g", Name: "G2", Type: "other", Posting: Posting{Policy: PostMembers}}
	got := string(patchFor(before, after))
	if want := `{"name":"G2","posting":{"allow":null,"policy":"members"}}`; got != want {
		t.Errorf("patch = %s, want %s", got, want)
	}
}

func TestImportFailingWrite(t *testing.T) {
	s, st := newTransferService()
	ctx := context.Background()
	// Someone takes inbox@example.com between the check and the write of that mailbox.
	var applies atomic.Int64
	st.beforeApply = func() {
		if applies.Add(1) == 6 { // 2 domains, ana, boss, bob, then inbox
			st.mu.Lock()
			st.claims["inbox@example.com"] = Owner{Kind: KindAlias, ID: "inbox@example.com"}
			st.mu.Unlock()
		}
	}
	r, err := s.Import(ctx, transferAdmin, sampleDocument(t), false)
	if !fault.Is(err, fault.Conflict) || !strings.Contains(fault.MessageOf(err), "mailbox inbox@example.com") ||
		fault.DetailsOf(err)["record"] != "mailbox:inbox@example.com" {
		t.Fatalf("err = %v (%v), want a conflict naming the mailbox", err, fault.DetailsOf(err))
	}
	if r.Created != 5 || len(r.Results) != 5 || r.Results[4].ID != "bob@example.com" {
		t.Errorf("report = %+v, want the 5 records before the failure", r)
	}

	// Once the address is free again, the same import finishes the job.
	st.mu.Lock()
	delete(st.claims, "inbox@example.com")
	st.mu.Unlock()
	st.beforeApply = nil
	r, err = s.Import(ctx, transferAdmin, sampleDocument(t), false)
	if err != nil {
		t.Fatalf("second import: %v %v", err, fault.DetailsOf(err))
	}
	// The catch-all and ana's manager (who comes after her) were still to be set.
	if r.Created != 11 || r.Updated != 2 || r.Unchanged != 3 {
		t.Errorf("second import = %+v", r)
	}
	clean, _, _ := importInto(t, sampleDocument(t))
	sameDirectory(t, export(t, s), export(t, clean))
}

func TestImportAddressesDoNotMove(t *testing.T) {
	s, _, _ := importInto(t, sampleDocument(t))
	sales := GroupDocument{Group: Group{ID: "sales", Name: "Sales", Type: "department"}} // gives up sales@example.com
	tests := []struct {
		doc  Document
		want FieldError
	}{
		{Document{Mailboxes: []Mailbox{{Address: "sales@example.com"}}, Groups: []GroupDocument{sales}},
			FieldError{"mailboxes.0.address", "sales@example.com is already in use by group sales"}},
		{Document{Aliases: []Alias{{Address: "orders@example.com", Target: "sales@example.com"}}, Groups: []GroupDocument{sales}},
			FieldError{"aliases.0.target", "sales@example.com is not a mailbox or group address"}},
	}
	for _, tt := range tests {
		_, err := s.Import(context.Background(), transferAdmin, tt.doc, true)
		if got := fieldErrorsOf(t, err); !reflect.DeepEqual(got, []FieldError{tt.want}) {
			t.Errorf("errors = %+v, want %+v", got, tt.want)
		}
	}
}

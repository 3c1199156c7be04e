package archive

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

var searchNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newSearch(idx Searcher) *Search {
	return &Search{Index: idx, Now: func() time.Time { return searchNow }}
}

func yes() *bool { b := true; return &b }

func TestPrepareChoosesTheListing(t *testing.T) {
	day := func(d int) time.Time { return searchNow.AddDate(0, 0, d) }
	tests := []struct {
		name     string
		q        Query
		listing  Listing
		filter   Filter
		from, to time.Time
	}{
		{"mailbox, normalised", Query{Mailbox: " Ana@Example.COM "},
			Listing{ListMailbox, "ana@example.com"}, Filter{}, time.Time{}, searchNow},
		{"recipient is the same listing", Query{Recipient: "info@example.com"},
			Listing{ListMailbox, "info@example.com"}, Filter{}, time.Time{}, searchNow},
		{"mailbox, sender and label filter", Query{Mailbox: "ana@example.com", Sender: "Kim@Client.example", Label: "VIP"},
			Listing{ListMailbox, "ana@example.com"}, Filter{Sender: "kim@client.example", Label: "vip"}, time.Time{}, searchNow},
		{"group", Query{Group: "Sales", Sender: "kim@client.example"},
			Listing{ListGroup, "sales"}, Filter{Sender: "kim@client.example"}, time.Time{}, searchNow},
		{"sender before label", Query{Sender: "kim@client.example", Label: "invoices"},
			Listing{ListSender, "kim@client.example"}, Filter{Label: "invoices"}, time.Time{}, searchNow},
		{"label", Query{Label: "Invoices", Subject: "  Quote   REQUEST ", HasAttachment: yes()},
			Listing{ListLabel, "invoices"}, Filter{Words: []string{"quote", "request"}, HasAttachment: yes()}, time.Time{}, searchNow},
		{"nothing: the last 30 days", Query{},
			Listing{Kind: ListDay}, Filter{}, day(-DefaultDays), searchNow},
		{"a range by date alone", Query{From: day(-3), To: day(-1), Subject: "invoice"},
			Listing{Kind: ListDay}, Filter{Words: []string{"invoice"}}, day(-3), day(-1)},
		{"a mailbox over years", Query{Mailbox: "ana@example.com", From: day(-1000)},
			Listing{ListMailbox, "ana@example.com"}, Filter{}, day(-1000), searchNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newSearch(nil).Prepare(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if p.Plan.Listing != tt.listing {
				t.Errorf("listing = %+v, want %+v", p.Plan.Listing, tt.listing)
			}
			if fmt.Sprint(p.Plan.Filter.Sender, p.Plan.Filter.Label, p.Plan.Filter.Words, p.Plan.Filter.HasAttachment != nil) !=
				fmt.Sprint(tt.filter.Sender, tt.filter.Label, tt.filter.Words, tt.filter.HasAttachment != nil) {
				t.Errorf("filter = %+v, want %+v", p.Plan.Filter, tt.filter)
			}
			if !p.Plan.From.Equal(tt.from) || !p.Plan.To.Equal(tt.to) {
				t.Errorf("range = %v – %v, want %v – %v", p.Plan.From, p.Plan.To, tt.from, tt.to)
			}
			if p.Plan.Limit != DefaultLimit {
				t.Errorf("limit = %d, want the default %d", p.Plan.Limit, DefaultLimit)
			}
		})
	}
}

func TestPrepareRefusesNamingTheField(t *testing.T) {
	tests := []struct {
		name  string
		q     Query
		field string
	}{
		{"mailbox that is no address", Query{Mailbox: "ana.example.com"}, "mailbox"},
		{"recipient with a space", Query{Recipient: "ana lim@example.com"}, "recipient"},
		{"sender with nothing after @", Query{Sender: "kim@"}, "sender"},
		{"mailbox and recipient", Query{Mailbox: "a@example.com", Recipient: "b@example.com"}, "recipient"},
		{"group and mailbox", Query{Group: "sales", Mailbox: "a@example.com"}, "group"},
		{"group id with a space", Query{Group: "sales team"}, "group"},
		{"label with a control character", Query{Label: "a\tb"}, "label"},
		{"eleven words", Query{Subject: strings.Repeat("w ", 11)}, "subject"},
		{"limit too large", Query{Limit: MaxLimit + 1}, "limit"},
		{"negative limit", Query{Limit: -1}, "limit"},
		{"from after to", Query{From: searchNow, To: searchNow.Add(-time.Hour)}, "from"},
		{"from in the future, to defaulted", Query{Mailbox: "a@example.com", From: searchNow.Add(time.Hour)}, "from"},
		{"367 days by date alone", Query{From: searchNow.AddDate(0, 0, -367)}, "from"},
		{"cursor that is not base64", Query{Cursor: "!!!"}, "cursor"},
		{"cursor that is not JSON", Query{Cursor: base64.RawURLEncoding.EncodeToString([]byte("nope"))}, "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSearch(nil).Prepare(tt.q)
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
				t.Errorf("error = %v, want Invalid naming %q", err, tt.field)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	s := Summary{ID: "m1", FromAddr: "kim@client.example", Subject: "Re: Invoices for NOVEMBER 报价", HasAttachments: true, Labels: []string{"Invoices", "vip"}}
	no := false
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"sender in any case", Filter{Sender: "KIM@client.example"}, true},
		{"other sender", Filter{Sender: "ana@client.example"}, false},
		{"label in any case", Filter{Label: "invoices"}, true},
		{"absent label", Filter{Label: "urgent"}, false},
		{"every word, parts of words, any case", Filter{Words: []string{"invoice", "november", "报"}}, true},
		{"one word missing", Filter{Words: []string{"invoice", "december"}}, false},
		{"has attachments", Filter{HasAttachment: yes()}, true},
		{"has none", Filter{HasAttachment: &no}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Match(s); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

// memSearcher pages through summaries held newest first; a position is the index of the last
// summary returned.
type memSearcher struct {
	items []Summary
	plans []Plan
}

func (m *memSearcher) Search(_ context.Context, p Plan, after *Position) ([]Summary, *Position, error) {
	m.plans = append(m.plans, p)
	start := 0
	if after != nil {
		n, err := strconv.Atoi(after.Key["i"])
		if err != nil {
			return nil, nil, fault.InvalidField("mem", "cursor", "bad position")
		}
		start = n + 1
	}
	var out []Summary
	last := -1
	for i := start; i < len(m.items); i++ {
		if !p.Filter.Match(m.items[i]) {
			continue
		}
		if len(out) == p.Limit {
			// Searches by date alone have a day in their positions, as the real one does.
			day := ""
			if p.Listing.Kind == ListDay {
				day = p.To.Format(time.DateOnly)
			}
			return out, &Position{Day: day, Key: map[string]string{"i": strconv.Itoa(last)}}, nil
		}
		out, last = append(out, m.items[i]), i
	}
	return out, nil, nil
}

func TestSearchPagesWithItsOwnCursor(t *testing.T) {
	idx := &memSearcher{}
	for i := range 5 {
		idx.items = append(idx.items, Summary{ID: fmt.Sprintf("m%d", i), FromAddr: "kim@client.example", Subject: "Invoice " + strconv.Itoa(i)})
	}
	s := newSearch(idx)
	ctx := context.Background()
	q := Query{Sender: "kim@client.example", Subject: "invoice", Limit: 2}
	var ids []string
	for pages := 0; ; pages++ {
		page, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.Next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		q.Cursor = page.Next
		q.Limit = 2 + pages%2 // a page size may change between pages
	}
	if want := []string{"m0", "m1", "m2", "m3", "m4"}; !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}

	first, err := s.Search(ctx, Query{Sender: "kim@client.example", Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v, %+v", err, first)
	}
	// The same query asked later, with an unchanged (absent) range, takes its cursor.
	if _, err := s.Search(ctx, Query{Sender: "KIM@client.example", Limit: 1, Cursor: first.Next}); err != nil {
		t.Errorf("the same query's cursor refused: %v", err)
	}
	tampered := func(edit func(*cursor)) string {
		b, _ := base64.RawURLEncoding.DecodeString(first.Next)
		var c cursor
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		edit(&c)
		b, _ = json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, tt := range []struct {
		name string
		q    Query
	}{
		{"another sender", Query{Sender: "ana@client.example", Cursor: first.Next}},
		{"another listing", Query{Mailbox: "kim@client.example", Cursor: first.Next}},
		{"a filter added", Query{Sender: "kim@client.example", Subject: "invoice", Cursor: first.Next}},
		{"a range added", Query{Sender: "kim@client.example", From: searchNow.AddDate(0, 0, -1), Cursor: first.Next}},
		{"fingerprint edited", Query{Sender: "kim@client.example", Cursor: tampered(func(c *cursor) { c.Query = "0" + c.Query[1:] })}},
		{"a day in a keyed listing", Query{Sender: "kim@client.example", Cursor: tampered(func(c *cursor) { c.Day = "2026-11-23" })}},
		{"no position", Query{Sender: "kim@client.example", Cursor: tampered(func(c *cursor) { c.Key = nil })}},
		{"cut short", Query{Sender: "kim@client.example", Cursor: first.Next[:len(first.Next)-3]}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Search(ctx, tt.q); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "cursor" {
				t.Errorf("error = %v, want Invalid naming cursor", err)
			}
		})
	}

	// A search by date alone: a cursor naming a day after the range is refused.
	byDay, err := s.Search(ctx, Query{Limit: 1})
	if err != nil || byDay.Next == "" {
		t.Fatalf("by day: %v, %+v", err, byDay)
	}
	b, _ := base64.RawURLEncoding.DecodeString(byDay.Next)
	var c cursor
	_ = json.Unmarshal(b, &c)
	c.Day = searchNow.AddDate(0, 0, 2).Format(time.DateOnly)
	b, _ = json.Marshal(c)
	if _, err := s.Search(ctx, Query{Limit: 1, Cursor: base64.RawURLEncoding.EncodeToString(b)}); fault.FieldOf(err) != "cursor" {
		t.Errorf("cursor past the range: error = %v, want Invalid naming cursor", err)
	}
}

func TestPreparedScope(t *testing.T) {
	for q, want := range map[*Query]string{
		{Mailbox: "Ana@example.com"}:               "mailbox:ana@example.com",
		{Recipient: "info@example.com"}:            "mailbox:info@example.com",
		{Group: "sales"}:                           "group:sales",
		{Sender: "kim@client.example"}:             "sender:kim@client.example",
		{Label: "VIP"}:                             "label:vip",
		{Subject: "invoice", HasAttachment: yes()}: "all",
	} {
		p, err := newSearch(nil).Prepare(*q)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Scope(); got != want {
			t.Errorf("Scope of %+v = %q, want %q", *q, got, want)
		}
	}
}

func TestListingsAreBoundedAndFlagged(t *testing.T) {
	r := Record{
		Recipients: []string{"Sales@example.com", "sales@example.com", "ana@example.com"},
		Groups:     []string{"sales", "sales"},
		Labels:     []string{"VIP", "vip", "invoices"},
	}
	want := []Listing{{ListMailbox, "sales@example.com"}, {ListMailbox, "ana@example.com"}, {ListGroup, "sales"}, {ListLabel, "vip"}, {ListLabel, "invoices"}}
	if got := r.Listings(); !slices.Equal(got, want) {
		t.Errorf("Listings = %v, want %v", got, want)
	}
	r.FlagCutListings()
	if len(r.Flags) != 0 {
		t.Errorf("flags = %v for a record whose listings fit", r.Flags)
	}

	for i := range 120 {
		r.Recipients = append(r.Recipients, fmt.Sprintf("r%d@example.com", i))
	}
	r.Flags = []string{"routing-deferred", "bad-date"}
	flags := r.Flags
	ls := r.Listings()
	if len(ls) != MaxListings || ls[len(ls)-1].Kind != ListMailbox {
		t.Errorf("%d listings, the last %+v; want %d, mailboxes first", len(ls), ls[len(ls)-1], MaxListings)
	}
	r.FlagCutListings()
	if want := []string{"bad-date", "routing-deferred", FlagTruncatedListings}; !slices.Equal(r.Flags, want) {
		t.Errorf("flags = %v, want %v", r.Flags, want)
	}
	if flags[0] != "routing-deferred" {
		t.Errorf("flagging reordered the caller's flags: %v", flags)
	}
	r.FlagCutListings()
	if len(r.Flags) != 3 {
		t.Errorf("flagged twice: %v", r.Flags)
	}
}

// A classifier's groups and labels count: Archive flags the record when they do not all fit.
func TestArchiveFlagsCutListings(t *testing.T) {
	objects, index := newMemObjects(), newMemIndex()
	objects.objects["inbound/many1"] = []byte(simple)
	res, err := newService(objects, index).Classify(context.Background(), receivedMessage("many1"), func(_ context.Context, _ *mail.Message, r *Record) error {
		for i := range MaxListings {
			r.Labels = append(r.Labels, fmt.Sprintf("l%d", i))
		}
		r.Groups = []string{"sales"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Record.Flags, FlagTruncatedListings) || !slices.Contains(index.records["many1"].Flags, FlagTruncatedListings) {
		t.Errorf("flags = %v, want %s", res.Record.Flags, FlagTruncatedListings)
	}
	if got := res.Record.Listings(); got[1] != (Listing{ListGroup, "sales"}) {
		t.Errorf("listings start %v; want the mailbox, then the group before any label", got[:2])
	}
}

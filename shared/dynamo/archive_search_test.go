package dynamo_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
)

// targets records the DynamoDB operations a client sends, from each request's X-Amz-Target
// header ("DynamoDB_20120810.Query"), by wrapping the client's HTTP client.
type targets struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	mu   sync.Mutex
	seen []string
}

func (t *targets) Do(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.seen = append(t.seen, r.Header.Get("X-Amz-Target"))
	t.mu.Unlock()
	return t.next.Do(r)
}

func (t *targets) operations() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ops []string
	for _, s := range t.seen {
		_, op, _ := strings.Cut(s, ".")
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	return ops
}

// spiedClient is the stack's DynamoDB client with its requests recorded.
func spiedClient(t *testing.T) (*dynamodb.Client, *targets) {
	t.Helper()
	opts := devstacktest.Clients(t).DynamoDB.Options()
	spy := &targets{next: opts.HTTPClient}
	return dynamodb.New(opts, func(o *dynamodb.Options) { o.HTTPClient = spy }), spy
}

// searchCorpus is five messages over four days, to two mailboxes of a group, from two senders.
func searchCorpus() []archive.Record {
	at := func(day, hour int) time.Time { return time.Date(2026, 11, day, hour, 0, 0, 0, time.UTC) }
	msg := func(id string, received time.Time, from, subject string, attach bool, rcpts, groups, labels []string) archive.Record {
		r := archive.Record{
			ID: id, Source: "ses", Key: "archive/" + id + ".eml", RawKey: "inbound/" + id,
			ReceivedAt: received, ArchivedAt: received.Add(time.Second), Recipients: rcpts,
			From: []mail.Address{{Address: from}}, Subject: subject, Size: 1000, SHA256: "ab",
			Groups: groups, Labels: labels,
		}
		if attach {
			r.Attachments = []mail.Attachment{{Part: "2", Filename: "a.pdf", ContentType: "application/pdf", Size: 10, SHA256: "cd"}}
		}
		return r
	}
	const kim, bo = "Kim@Client.example", "bo@partner.example"
	sales, ana := "sales@example.com", "ana@example.com"
	return []archive.Record{
		msg("m1", at(20, 10), kim, "Invoice 41", true, []string{sales, ana}, []string{"sales"}, []string{"invoices"}),
		msg("m2", at(21, 9), kim, "Quote request", false, []string{ana}, nil, []string{"vip"}),
		msg("m3", at(22, 11), bo, "Re: invoice 42 报价", true, []string{sales}, []string{"sales"}, []string{"invoices", "VIP"}),
		msg("m4", at(23, 8), kim, "Lunch", false, []string{"carl@example.com"}, nil, nil),
		msg("m5", at(23, 9), bo, "INVOICE overdue", false, []string{sales}, []string{"sales", "support"}, nil),
	}
}

// searchEnv is an archive table holding searchCorpus, searched through a client whose requests
// are recorded.
func searchEnv(t *testing.T) (*archive.Search, *dynamo.ArchiveIndex, *targets, string) {
	t.Helper()
	ctx := context.Background()
	table := devstacktest.Table(t, "ArchiveTable")
	writer := dynamo.NewArchiveIndex(devstacktest.Clients(t).DynamoDB, table)
	for _, r := range searchCorpus() {
		if err := writer.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	client, spy := spiedClient(t)
	idx := dynamo.NewArchiveIndex(client, table)
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	return &archive.Search{Index: idx, Now: func() time.Time { return now }}, idx, spy, table
}

// all reads every page of q and returns the ids in order, and the size of each page.
func all(t *testing.T, s *archive.Search, q archive.Query) (ids []string, pages []int) {
	t.Helper()
	for range 100 {
		page, err := s.Search(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		pages = append(pages, len(page.Items))
		if page.Next == "" {
			return ids, pages
		}
		q.Cursor = page.Next
	}
	t.Fatalf("%+v: paging does not end", q)
	return nil, nil
}

func TestArchiveSearchCriteria(t *testing.T) {
	s, _, spy, _ := searchEnv(t)
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	yes, no := true, false
	tests := []struct {
		name string
		q    archive.Query
		want []string
	}{
		{"A4 mailbox", archive.Query{Mailbox: "Sales@Example.com"}, []string{"m5", "m3", "m1"}},
		{"A4 recipient", archive.Query{Recipient: "ana@example.com"}, []string{"m2", "m1"}},
		{"A4 mailbox in a range", archive.Query{Mailbox: "sales@example.com", From: day(22), To: day(23).Add(9*time.Hour - time.Nanosecond)}, []string{"m3"}},
		{"A4 both ends included", archive.Query{Mailbox: "sales@example.com", From: day(20).Add(10 * time.Hour), To: day(23).Add(9 * time.Hour)}, []string{"m5", "m3", "m1"}},
		{"A7 group", archive.Query{Group: "sales"}, []string{"m5", "m3", "m1"}},
		{"A7 another group", archive.Query{Group: "support"}, []string{"m5"}},
		{"A5 sender, any case", archive.Query{Sender: "kim@client.example"}, []string{"m4", "m2", "m1"}},
		{"A8 label", archive.Query{Label: "invoices"}, []string{"m3", "m1"}},
		{"A8 label in any case", archive.Query{Label: "Vip"}, []string{"m3", "m2"}},
		{"A6 days", archive.Query{From: day(21), To: day(22).Add(23 * time.Hour)}, []string{"m3", "m2"}},
		{"A6 the last 30 days", archive.Query{}, []string{"m5", "m4", "m3", "m2", "m1"}},
		{"A9 subject words by date", archive.Query{Subject: "invoice"}, []string{"m5", "m3", "m1"}},
		{"A9 every word", archive.Query{Subject: "INVOICE 42"}, []string{"m3"}},
		{"A9 attachments in a mailbox", archive.Query{Mailbox: "sales@example.com", HasAttachment: &yes}, []string{"m3", "m1"}},
		{"A9 no attachments from a sender", archive.Query{Sender: "kim@client.example", HasAttachment: &no}, []string{"m4", "m2"}},
		{"mailbox and sender", archive.Query{Mailbox: "sales@example.com", Sender: "bo@partner.example"}, []string{"m5", "m3"}},
		{"group, label and subject", archive.Query{Group: "sales", Label: "invoices", Subject: "报价"}, []string{"m3"}},
		{"sender and label", archive.Query{Sender: "kim@client.example", Label: "vip"}, []string{"m2"}},
		{"label and attachments", archive.Query{Label: "vip", HasAttachment: &yes}, []string{"m3"}},
		{"nothing matches", archive.Query{Mailbox: "nobody@example.com"}, nil},
		{"before the corpus", archive.Query{To: day(19)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := all(t, s, tt.q)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	// Every search was served by queries of keys and indexes.
	if ops := spy.operations(); !slices.Equal(ops, []string{"Query"}) {
		t.Errorf("searches sent %v; want only Query (never a Scan)", ops)
	}
}

func TestArchiveSearchSummaries(t *testing.T) {
	s, _, _, _ := searchEnv(t)
	page, err := s.Search(context.Background(), archive.Query{Group: "sales", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := archive.Summary{ID: "m5", ReceivedAt: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), FromAddr: "bo@partner.example",
		Subject: "INVOICE overdue", Size: 1000}
	if len(page.Items) != 1 || fmt.Sprint(page.Items[0]) != fmt.Sprint(want) || page.Next == "" {
		t.Errorf("page = %+v, want [%+v] and a cursor", page, want)
	}
}

func TestArchiveSearchPaging(t *testing.T) {
	s, _, spy, _ := searchEnv(t)
	tests := []struct {
		name  string
		q     archive.Query
		want  []string
		pages []int
	}{
		// The last page never comes with a cursor to an empty one.
		{"a mailbox a message at a time", archive.Query{Mailbox: "sales@example.com", Limit: 1}, []string{"m5", "m3", "m1"}, []int{1, 1, 1}},
		{"exactly a page", archive.Query{Mailbox: "sales@example.com", Limit: 3}, []string{"m5", "m3", "m1"}, []int{3}},
		{"days, pages across days", archive.Query{Limit: 2}, []string{"m5", "m4", "m3", "m2", "m1"}, []int{2, 2, 1}},
		{"a sender, filtered", archive.Query{Sender: "kim@client.example", Subject: "e", Limit: 1}, []string{"m2", "m1"}, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := all(t, s, tt.q)
			if !slices.Equal(got, tt.want) || !slices.Equal(pages, tt.pages) {
				t.Errorf("ids = %v in pages %v, want %v in %v", got, pages, tt.want, tt.pages)
			}
		})
	}

	// A page stops when its reads run out: a filtered search then gives short pages, even empty
	// ones, with a cursor that goes on where it stopped, and nothing is lost or repeated.
	t.Run("bounded reads", func(t *testing.T) {
		dynamo.SetSearchBounds(t, 2, 5000)
		got, pages := all(t, s, archive.Query{Subject: "invoice", Limit: 5, From: time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)})
		if want := []string{"m5", "m3", "m1"}; !slices.Equal(got, want) {
			t.Errorf("ids = %v, want %v", got, want)
		}
		if len(pages) < 4 || !slices.Contains(pages, 0) {
			t.Errorf("pages %v: want short pages with cursors, two days read per page", pages)
		}
		dynamo.SetSearchBounds(t, 100, 1)
		got, pages = all(t, s, archive.Query{Mailbox: "sales@example.com", HasAttachment: new(bool), Limit: 5})
		if !slices.Equal(got, []string{"m5"}) || len(pages) < 3 {
			t.Errorf("ids = %v in pages %v, want [m5] after reading one message a page", got, pages)
		}
	})
	if ops := spy.operations(); !slices.Equal(ops, []string{"Query"}) {
		t.Errorf("searches sent %v; want only Query (never a Scan)", ops)
	}
}

// A cursor is the query's own: the domain refuses another query's (shared/archive's tests); the
// adapter refuses a position outside the plan's partition or range.
func TestArchiveSearchRefusesForeignPositions(t *testing.T) {
	s, idx, _, _ := searchEnv(t)
	ctx := context.Background()
	first, err := s.Search(ctx, archive.Query{Mailbox: "sales@example.com", Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v %+v", err, first)
	}
	if _, err := s.Search(ctx, archive.Query{Mailbox: "ana@example.com", Limit: 1, Cursor: first.Next}); fault.FieldOf(err) != "cursor" {
		t.Errorf("another mailbox's cursor: error = %v, want Invalid naming cursor", err)
	}

	plan := func(q archive.Query) archive.Plan {
		p, err := s.Prepare(q)
		if err != nil {
			t.Fatal(err)
		}
		return p.Plan
	}
	box := plan(archive.Query{Mailbox: "sales@example.com"})
	key := func(pk, sk string) map[string]string { return map[string]string{"PK": pk, "SK": sk} }
	for _, tt := range []struct {
		name string
		p    archive.Plan
		pos  archive.Position
	}{
		{"another partition", box, archive.Position{Key: key("BOX#ana@example.com", "2026-11-21T09:00:00.000000000Z#m2")}},
		{"past the range's end", plan(archive.Query{Mailbox: "sales@example.com", To: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}),
			archive.Position{Key: key("BOX#sales@example.com", "2026-11-23T09:00:00.000000000Z#m5")}},
		{"an index key in the table", box, archive.Position{Key: map[string]string{"PK": "MSG#m5", "SK": "MSG", "GSI2PK": "FROM#bo@partner.example", "GSI2SK": "x"}}},
		{"a day outside the range", plan(archive.Query{From: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}),
			archive.Position{Day: "2026-11-23"}},
		{"a key of another day", plan(archive.Query{}), archive.Position{Day: "2026-11-22", Key: map[string]string{
			"PK": "MSG#m5", "SK": "MSG", "GSI3PK": "DAY#2026-11-23", "GSI3SK": "2026-11-23T09:00:00.000000000Z#m5"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := idx.Search(ctx, tt.p, &tt.pos); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "cursor" {
				t.Errorf("error = %v, want Invalid naming cursor", err)
			}
		})
	}
}

// TestArchiveListings checks that Put writes exactly the listings ListingKeys names (retention
// deletes by them), in the shape docs/data-model.md gives, and bounds them within a transaction.
func TestArchiveListings(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	table := devstacktest.Table(t, "ArchiveTable")
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, table)
	recs := searchCorpus()
	big := recs[0]
	big.ID, big.ReceivedAt = "big", big.ReceivedAt.Add(time.Minute)
	big.Recipients = nil
	for i := range 120 {
		big.Recipients = append(big.Recipients, fmt.Sprintf("r%03d@example.com", i))
	}
	recs = append(recs, big)
	want := map[string]bool{}
	for _, r := range recs {
		if err := idx.Put(ctx, r); err != nil {
			t.Fatalf("Put %s: %v", r.ID, err)
		}
		want["MSG#"+r.ID+" MSG"] = true
		for _, k := range idx.ListingKeys(r) {
			want[k["PK"].(*types.AttributeValueMemberS).Value+" "+k["SK"].(*types.AttributeValueMemberS).Value] = true
		}
	}

	if got := keysOf(idx.ListingKeys(recs[4])); !slices.Equal(got, []string{
		"BOX#sales@example.com 2026-11-23T09:00:00.000000000Z#m5",
		"GRP#sales 2026-11-23T09:00:00.000000000Z#m5",
		"GRP#support 2026-11-23T09:00:00.000000000Z#m5",
	}) {
		t.Errorf("ListingKeys(m5) = %q", got)
	}
	if got := keysOf(idx.ListingKeys(recs[2])); !slices.Contains(got, "LBL#vip 2026-11-22T11:00:00.000000000Z#m3") {
		t.Errorf("ListingKeys(m3) = %q, want a lower-cased label listing", got)
	}
	if n := len(idx.ListingKeys(big)); n != archive.MaxListings {
		t.Errorf("ListingKeys of 120 recipients: %d, want %d", n, archive.MaxListings)
	}
	stored, err := idx.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(stored.Flags, archive.FlagTruncatedListings) || len(stored.Recipients) != 120 {
		t.Errorf("stored record: flags %v, %d recipients; want %s and every recipient", stored.Flags, len(stored.Recipients), archive.FlagTruncatedListings)
	}

	// The test reads the whole table to see that nothing else was written; a search never does.
	got := map[string]bool{}
	var start map[string]types.AttributeValue
	for {
		out, err := clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ExclusiveStartKey: start})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			got[it["PK"].(*types.AttributeValueMemberS).Value+" "+it["SK"].(*types.AttributeValueMemberS).Value] = true
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("ListingKeys names %s, which Put did not write", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("Put wrote %s, which ListingKeys does not name", k)
		}
	}
}

func keysOf(keys []map[string]types.AttributeValue) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k["PK"].(*types.AttributeValueMemberS).Value+" "+k["SK"].(*types.AttributeValueMemberS).Value)
	}
	return out
}

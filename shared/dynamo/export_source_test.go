package dynamo_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/export"
)

// TestExportListings reads mailbox and group listings merged, oldest first, each message once,
// within a time range, and resumed after any entry.
func TestExportListings(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	table := devstacktest.Table(t, "ArchiveTable")
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, table)
	listings := dynamo.NewExportListings(clients.DynamoDB, table)
	listings.PageSize = 3 // several pages per partition, and merges across page ends

	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var all []string
	for i := range 12 {
		id := fmt.Sprintf("m%02d", i)
		rec := archive.Record{ID: id, Source: "ses", Key: "archive/" + id + ".eml", RawKey: "inbound/" + id,
			ReceivedAt: day.Add(time.Duration(i) * time.Minute), ArchivedAt: day, EnvelopeFrom: "ana@example.org",
			SHA256: "sum-" + id, Size: int64(100 + i)}
		// Even messages to sales@, odd to ops@, every third to both: the merge lists each once.
		rec.Recipients = []string{"ops@example.com"}
		if i%2 == 0 {
			rec.Recipients = []string{"Sales@example.com"}
		}
		if i%3 == 0 {
			rec.Recipients = append(rec.Recipients, "ops@example.com", "sales@example.com")
		}
		if err := idx.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
		all = append(all, id)
	}

	both := export.Listing{Mailboxes: []string{"sales@example.com", "ops@example.com"}}
	read := func(l export.Listing, after string) ([]string, []string) {
		t.Helper()
		src, err := listings.Open(ctx, l, after)
		if err != nil {
			t.Fatal(err)
		}
		var ids, positions []string
		for {
			page, done, err := src.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				ids, positions = append(ids, e.ID), append(positions, e.After)
			}
			if done {
				return ids, positions
			}
		}
	}
	ids, positions := read(both, "")
	if !slices.Equal(ids, all) {
		t.Errorf("merged listing = %v, want %v", ids, all)
	}
	for i, p := range positions {
		if rest, _ := read(both, p); !slices.Equal(rest, all[i+1:]) {
			t.Errorf("after %s: %v, want %v", ids[i], rest, all[i+1:])
		}
	}
	ranged := export.Listing{Mailboxes: []string{"sales@example.com"}, From: day.Add(2 * time.Minute), To: day.Add(6 * time.Minute)}
	if got, _ := read(ranged, ""); !slices.Equal(got, []string{"m02", "m03", "m04", "m06"}) {
		t.Errorf("sales@ from 00:02 to 00:06 = %v", got)
	}
	if got, _ := read(export.Listing{Mailboxes: []string{"nobody@example.com"}}, ""); len(got) != 0 {
		t.Errorf("an empty mailbox lists %v", got)
	}

	// Records: a batch at a time, the missing left out, repeats once.
	want := append(slices.Clone(all), "gone")
	for range 110 {
		want = append(want, "m01")
	}
	recs, err := listings.Records(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(all) || recs["m05"].Key != "archive/m05.eml" || recs["m05"].EnvelopeFrom != "ana@example.org" ||
		!recs["m05"].ReceivedAt.Equal(day.Add(5*time.Minute)) || recs["m05"].SHA256 != "sum-m05" {
		t.Errorf("Records: %d records; m05 = %+v", len(recs), recs["m05"])
	}
}

package dynamo

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/mail"
)

// BenchmarkArchiveSearch is one page of 100 from a mailbox of 2,000 messages over 20 days, on
// DynamoDB Local: by key alone, by date alone, and with a subject word one message in a hundred
// has, which reads the listing until the page fills or the listing ends.
func BenchmarkArchiveSearch(b *testing.B) {
	const messages, days = 2000, 20
	ctx := context.Background()
	client, requests, reads := countingClient(b)
	table := devstacktest.Table(b, "ArchiveTable")
	last := time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC)
	seedArchive(b, NewArchiveIndex(devstacktest.Clients(b).DynamoDB, table), last, messages, days)
	search := &archive.Search{Index: NewArchiveIndex(client, table), Now: func() time.Time { return last }}

	for _, bc := range []struct {
		name  string
		q     archive.Query
		items int
	}{
		{"mailbox", archive.Query{Mailbox: "sales@example.com"}, 100},
		{"days", archive.Query{From: last.AddDate(0, 0, -days)}, 100},
		{"mailbox-subject-1-in-100", archive.Query{Mailbox: "sales@example.com", Subject: "overdue"}, messages / 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var reqs, items int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r0, i0 := requests.Count(), reads.Count()
				page, err := search.Search(ctx, bc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(page.Items) != bc.items {
					b.Fatalf("%d items, want %d", len(page.Items), bc.items)
				}
				reqs += requests.Count() - r0
				items += reads.Count() - i0
			}
			b.ReportMetric(float64(reqs)/float64(b.N), "aws-req/op")
			b.ReportMetric(float64(items)/float64(b.N), "items-read/op")
		})
	}
}

// seedArchive archives n messages to sales@example.com, evenly over the days before last; one in
// a hundred is about an overdue invoice.
func seedArchive(b *testing.B, idx *ArchiveIndex, last time.Time, n, days int) {
	b.Helper()
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				subject := fmt.Sprintf("Quote request %d", i)
				if i%100 == 0 {
					subject = fmt.Sprintf("Invoice %d overdue", i)
				}
				at := last.Add(-time.Duration(i) * step)
				errs <- idx.Put(context.Background(), archive.Record{
					ID: fmt.Sprintf("bench%05d", i), Source: "ses", Key: "archive/x", RawKey: "inbound/x",
					ReceivedAt: at, ArchivedAt: at, Recipients: []string{"sales@example.com"},
					From: []mail.Address{{Address: fmt.Sprintf("c%d@client.example", i%50)}}, Subject: subject,
					Size: 20_000, SHA256: "ab", Groups: []string{"sales"}, Labels: []string{"quotes"},
				})
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

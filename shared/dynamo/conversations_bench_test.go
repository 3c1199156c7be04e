package dynamo

// The conversation benchmarks are in the package itself: they seed the table with the very items
// Put writes (conversationItems), a hundred thousand of them, which only BatchWriteItem does in
// reasonable time.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/sla"
)

// BenchmarkDue is the SLA sweep's read against DynamoDB Local: 100,000 open conversations, of
// which 100 are due. Requests and items read follow the due conversations, not the open ones:
// one query per shard, each reading only its due entries.
func BenchmarkDue(b *testing.B) {
	const open, due = 100_000, 100
	ctx := context.Background()
	client, requests, reads := countingClient(b)
	table := devstacktest.Table(b, "StateTable")
	now := time.Now().UTC()
	// Seeded once: sub-benchmarks run their function more than once, their parent does not.
	seedConversations(b, devstacktest.Clients(b).DynamoDB, table, now, open, due)
	store := NewConversations(client, table)

	b.Run(fmt.Sprintf("%d-due-of-%d", due, open), func(b *testing.B) {
		var reqs, items int64
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			r0, i0 := requests.Count(), reads.Count()
			got, err := store.Due(ctx, now, sla.DefaultSweepLimit)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) != due {
				b.Fatalf("Due returned %d conversations, want %d", len(got), due)
			}
			reqs += requests.Count() - r0
			items += reads.Count() - i0
		}
		b.ReportMetric(float64(reqs)/float64(b.N), "aws-req/op")
		b.ReportMetric(float64(items)/float64(b.N), "items-read/op")
	})
}

// BenchmarkPut is one change of a conversation that threads two Message-IDs: one transaction.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	client, requests, _ := countingClient(b)
	store := NewConversations(client, devstacktest.Table(b, "StateTable"))
	c := benchConversation(0, time.Now().UTC().Add(time.Hour))
	if err := store.Put(ctx, c, 0, []string{"first@client.example"}); err != nil {
		b.Fatal(err)
	}
	var reqs int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		expect := c.Version
		c.Version++
		c.LastMessageAt = c.LastMessageAt.Add(time.Minute)
		ids := []string{fmt.Sprintf("m%d@client.example", i), fmt.Sprintf("0100019a%08d", i)}
		r0 := requests.Count()
		if err := store.Put(ctx, c, expect, ids); err != nil {
			b.Fatal(err)
		}
		reqs += requests.Count() - r0
	}
	b.ReportMetric(float64(reqs)/float64(b.N), "aws-req/op")
}

// countingClient is a DynamoDB client on the local stack that counts the requests it sends and
// the items DynamoDB read to answer them.
func countingClient(b *testing.B) (*dynamodb.Client, *awsclient.RequestCounter, *itemCounter) {
	b.Helper()
	ep := devstacktest.Endpoints(b)
	requests, reads := &awsclient.RequestCounter{}, &itemCounter{}
	c, err := awsclient.New(context.Background(), awsclient.Options{
		Region: ep.Region, Endpoints: awsclient.Endpoints{DynamoDB: ep.DynamoDB},
		AccessKey: ep.AccessKey, SecretKey: ep.SecretKey, Counter: requests,
	})
	if err != nil {
		b.Fatal(err)
	}
	client := dynamodb.New(c.DynamoDB.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(slices.Clone(o.APIOptions), reads.register)
	})
	return client, requests, reads
}

// itemCounter counts the items DynamoDB read for queries (ScannedCount, before any filter), gets
// and batch gets: what a read costs in capacity, which the number returned can hide.
type itemCounter struct{ n atomic.Int64 }

func (c *itemCounter) Count() int64 { return c.n.Load() }

func (c *itemCounter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bench.CountItemsRead",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			switch o := out.Result.(type) {
			case *dynamodb.QueryOutput:
				c.n.Add(int64(o.ScannedCount))
			case *dynamodb.GetItemOutput:
				if o.Item != nil {
					c.n.Add(1)
				}
			case *dynamodb.BatchGetItemOutput:
				for _, items := range o.Responses {
					c.n.Add(int64(len(items)))
				}
			}
			return out, md, err
		}), middleware.After)
}

// benchConversation is a waiting conversation whose warning is at warnAt.
func benchConversation(i int, warnAt time.Time) sla.Conversation {
	opened := warnAt.Add(-3 * time.Hour)
	return sla.Conversation{
		ID: fmt.Sprintf("C%09d", i), Queue: "group:support", Policy: "standard", Customer: "kim@client.example",
		Subject: "Order 1234 arrived broken", OpenedAt: opened, State: sla.Waiting, Target: sla.TargetFirst,
		Since: opened, WarnAt: warnAt, Due: opened.Add(4 * time.Hour),
		LastMessageID: fmt.Sprintf("m%d@client.example", i), LastMessageAt: opened, Language: "en", Version: 1,
	}
}

// seedConversations writes n waiting conversations, the first due of them with their warning in
// the past and the rest from an hour on: each as its conversation item and report row, exactly as
// Put writes them, 25 items a BatchWriteItem request from a few goroutines.
func seedConversations(b *testing.B, client *dynamodb.Client, table string, now time.Time, n, due int) {
	b.Helper()
	const perJob, workers = 100, 8 // 100 conversations: 200 items, 8 requests
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for lo := range jobs {
				var items []map[string]types.AttributeValue
				for i := lo; i < min(lo+perJob, n); i++ {
					warnAt := now.Add(time.Hour + time.Duration(i)*time.Second)
					if i < due {
						warnAt = now.Add(-time.Duration(i+1) * time.Second)
					}
					conv, report, _, err := conversationItems(benchConversation(i, warnAt))
					if err != nil {
						errs <- err
						return
					}
					items = append(items, conv, report)
				}
				for chunk := range slices.Chunk(items, 25) {
					if err := batchWrite(client, table, chunk); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	for lo := 0; lo < n; lo += perJob {
		select {
		case jobs <- lo:
		case err := <-errs:
			b.Fatal(err)
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func batchWrite(client *dynamodb.Client, table string, items []map[string]types.AttributeValue) error {
	reqs := make([]types.WriteRequest, len(items))
	for i, it := range items {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
	}
	req := map[string][]types.WriteRequest{table: reqs}
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt == maxBatchAttempts {
			return fmt.Errorf("items still unwritten after %d attempts", attempt)
		}
		if attempt > 0 {
			time.Sleep(backoff(attempt))
		}
		out, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			return err
		}
		req = out.UnprocessedItems
	}
	return nil
}

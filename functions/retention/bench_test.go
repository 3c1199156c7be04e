package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	fn "github.com/mailroom/mailroom/functions/retention"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/retention"
)

// BenchmarkRetention is a real retention pass on the local stack over an archive of
// BENCH_RETENTION_MESSAGES messages (100,000 by default) received over 100 days, every one past
// its 30-day policy: the record, a mailbox and a group listing in DynamoDB and a 1 KB original in
// the versioned bucket each. It reports messages deleted per second and AWS requests per deleted
// message, and the requests of each operation per 1,000 messages. Seeding (outside the timer)
// writes the records and the originals; each iteration seeds afresh, so run it with -benchtime=1x.
//
// The kept-archive sub-benchmark is the daily cost when nothing is due: the same archive kept
// forever by one policy while another keeps other mail 30 days. A full pass reads every message
// older than 30 days to decide it; the next day's incremental pass reads one day's worth.
func BenchmarkRetention(b *testing.B) {
	n := 100_000
	if s := os.Getenv("BENCH_RETENTION_MESSAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("BENCH_RETENTION_MESSAGES=%q", s)
		}
		n = v
	}
	ctx := context.Background()
	ep := devstacktest.Endpoints(b)
	requests := &awsclient.RequestCounter{}
	ops := &opCounter{n: map[string]*atomic.Int64{}}
	counted, err := awsclient.New(ctx, awsclient.Options{
		Region: ep.Region, Endpoints: awsclient.Endpoints{DynamoDB: ep.DynamoDB, S3: ep.S3},
		AccessKey: ep.AccessKey, SecretKey: ep.SecretKey, Counter: requests,
	})
	if err != nil {
		b.Fatal(err)
	}
	counted.DynamoDB = dynamodb.New(counted.DynamoDB.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(slices.Clone(o.APIOptions), ops.register)
	})
	counted.S3 = s3.New(counted.S3.Options(), func(o *s3.Options) { o.APIOptions = append(slices.Clone(o.APIOptions), ops.register) })

	b.Run(fmt.Sprintf("%d-messages", n), func(b *testing.B) {
		var deleted, reqs int64
		var elapsed time.Duration
		var allocated uint64
		var ms runtime.MemStats
		perOp := map[string]int64{}
		for range b.N {
			b.StopTimer()
			w := newWorld(b, "")
			w.keep(b, "all-30", retention.ScopeGroup, "sales", 30)
			seedStart := time.Now()
			seedArchive(b, w, n, time.Now().UTC().Add(-400*day))
			b.Logf("seeded %d messages in %s", n, time.Since(seedStart).Round(time.Second))
			j := fn.NewJob(w.cfg, counted)
			r0 := requests.Count()
			ops.reset()
			runtime.ReadMemStats(&ms)
			alloc0 := ms.TotalAlloc
			b.StartTimer()
			start := time.Now()
			var res retention.Result
			for invocations := 0; res.Outcome != retention.Complete; invocations++ {
				if invocations == 100 {
					b.Fatal("no end after 100 invocations")
				}
				if res, err = j.Run(ctx); err != nil {
					b.Fatal(err)
				}
			}
			elapsed += time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&ms)
			allocated += ms.TotalAlloc - alloc0
			if res.Tally.Deleted != n {
				b.Fatalf("deleted %d of %d: %+v", res.Tally.Deleted, n, res.Tally)
			}
			deleted += int64(res.Tally.Deleted)
			reqs += requests.Count() - r0
			for op, c := range ops.snapshot() {
				perOp[op] += c
			}
		}
		b.ReportMetric(float64(deleted)/elapsed.Seconds(), "msgs-deleted/s")
		b.ReportMetric(float64(reqs)/float64(deleted), "aws-req/msg")
		b.ReportMetric(float64(allocated)/float64(deleted), "B-alloc/msg")
		var names []string
		for op := range perOp {
			names = append(names, op)
		}
		sort.Strings(names)
		var parts []string
		for _, op := range names {
			parts = append(parts, fmt.Sprintf("%s %.1f", op, float64(perOp[op])*1000/float64(deleted)))
		}
		b.Logf("requests per 1,000 messages deleted: %s", strings.Join(parts, ", "))
	})

	b.Run(fmt.Sprintf("kept-archive-%d", n), func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			w := newWorld(b, "")
			w.setting(b, retention.PolicySetting(), "sales-forever", retention.Policy{Scope: retention.Scope{Kind: retention.ScopeGroup, Value: "sales"}, Forever: true})
			w.keep(b, "support-30", retention.ScopeGroup, "support", 30)
			w.now = time.Now().UTC()
			seedArchive(b, w, n, w.now.Add(-100*day))
			j := fn.NewJob(w.cfg, counted)
			j.Now = func() time.Time { return w.now }
			for _, pass := range []string{"full", "incremental"} {
				r0 := requests.Count()
				b.StartTimer()
				start := time.Now()
				res, err := j.Run(ctx)
				took := time.Since(start)
				b.StopTimer()
				if err != nil || res.Outcome != retention.Complete || res.Tally.Deleted != 0 {
					b.Fatalf("%s pass: %+v %v", pass, res, err)
				}
				b.Logf("%s pass: %d messages read and kept, %d AWS requests, %s", pass, res.Tally.Examined, requests.Count()-r0, took.Round(time.Millisecond))
				w.now = w.now.Add(day)
			}
		}
	})
}

// seedArchive writes n records and originals, received from start over 100 days. The records are
// written 25 items to a BatchWriteItem request, items shaped exactly as ArchiveIndex.Put writes
// them (checked against one it wrote); Put's one transaction per message would make seeding a
// hundred thousand take ten minutes on DynamoDB Local.
func seedArchive(b *testing.B, w *world, n int, start time.Time) {
	b.Helper()
	const workers = 16
	spacing := 100 * day / time.Duration(n)
	body := bytes.Repeat([]byte("x"), 1024)
	record := func(i int) archive.Record {
		at := start.Add(time.Duration(i) * spacing)
		id := fmt.Sprintf("b%07d", i)
		return archive.Record{
			ID: id, Source: "ses", Key: w.archive.Key(at, id), RawKey: "inbound/" + id, ReceivedAt: at, ArchivedAt: at,
			EnvelopeFrom: "kim@client.example", Recipients: []string{"sales@example.com"},
			MessageID: id + "@client.example", From: []mail.Address{{Name: "Kim", Address: "kim@client.example"}},
			To: []mail.Address{{Address: "sales@example.com"}}, Subject: "Order " + id, Size: int64(len(body)),
			SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Groups: []string{"sales"},
		}
	}
	checkItems(b, w, record(n)) // one more than seeded, so it does not collide

	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ctx := context.Background()
			for lo := range jobs {
				var reqs []types.WriteRequest
				for i := lo; i < min(lo+100, n); i++ {
					rec := record(i)
					items, err := archiveItems(w, rec)
					if err != nil {
						errs <- err
						return
					}
					for _, it := range items {
						reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
					}
					if _, err := w.clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &w.cfg.MailBucket, Key: aws.String(rec.Key),
						Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}); err != nil {
						errs <- err
						return
					}
				}
				for chunk := range slices.Chunk(reqs, 25) {
					req := map[string][]types.WriteRequest{w.cfg.ArchiveTable: chunk}
					for len(req) > 0 {
						out, err := w.clients.DynamoDB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
						if err != nil {
							errs <- err
							return
						}
						req = out.UnprocessedItems
					}
				}
			}
		})
	}
	for lo := 0; lo < n; lo += 100 {
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

// archiveItems are the record's item and its listing items as docs/data-model.md describes them.
func archiveItems(w *world, r archive.Record) ([]map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMapWithOptions(r, func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
	if err != nil {
		return nil, err
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	sk := r.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + r.ID
	summary := map[string]types.AttributeValue{"id": item["id"], "receivedAt": item["receivedAt"], "size": item["size"],
		"subject": item["subject"], "fromAddr": s(r.FromAddress()), "hasAttachments": &types.AttributeValueMemberBOOL{Value: r.HasAttachments()}}
	maps.Copy(item, summary)
	item["PK"], item["SK"] = s("MSG#"+r.ID), s("MSG")
	item["GSI1PK"], item["GSI1SK"] = s("MID#"+r.MessageID), s(sk)
	item["GSI2PK"], item["GSI2SK"] = s("FROM#"+r.FromAddress()), s(sk)
	item["GSI3PK"], item["GSI3SK"] = s("DAY#"+r.ReceivedAt.UTC().Format(time.DateOnly)), s(sk)
	items := []map[string]types.AttributeValue{item}
	for _, k := range w.index.ListingKeys(r) {
		l := maps.Clone(summary)
		maps.Copy(l, k)
		items = append(items, l)
	}
	return items, nil
}

// checkItems writes r with ArchiveIndex.Put, reads back what it wrote, and fails unless
// archiveItems makes the same items; then deletes them.
func checkItems(b *testing.B, w *world, r archive.Record) {
	b.Helper()
	ctx := context.Background()
	if err := w.index.Put(ctx, r); err != nil {
		b.Fatal(err)
	}
	want, err := archiveItems(w, r)
	if err != nil {
		b.Fatal(err)
	}
	for _, it := range want {
		key := map[string]types.AttributeValue{"PK": it["PK"], "SK": it["SK"]}
		out, err := w.clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &w.cfg.ArchiveTable, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			b.Fatal(err)
		}
		var got, seeded map[string]any
		if err := attributevalue.UnmarshalMap(out.Item, &got); err != nil {
			b.Fatal(err)
		}
		if err := attributevalue.UnmarshalMap(it, &seeded); err != nil {
			b.Fatal(err)
		}
		if !reflect.DeepEqual(got, seeded) {
			b.Fatalf("the seeded item differs from what ArchiveIndex.Put writes:\n put  %v\n seed %v", got, seeded)
		}
		if _, err := w.clients.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &w.cfg.ArchiveTable, Key: key}); err != nil {
			b.Fatal(err)
		}
	}
}

// opCounter counts requests per service operation.
type opCounter struct {
	mu sync.Mutex
	n  map[string]*atomic.Int64
}

func (c *opCounter) register(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("bench.CountOperations",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := middleware.GetServiceID(ctx) + "." + middleware.GetOperationName(ctx)
			c.mu.Lock()
			v, ok := c.n[op]
			if !ok {
				v = &atomic.Int64{}
				c.n[op] = v
			}
			c.mu.Unlock()
			v.Add(1)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *opCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = map[string]*atomic.Int64{}
}

func (c *opCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for k, v := range c.n {
		out[k] = v.Load()
	}
	return out
}

package dynamo_test

import (
	"context"
	"fmt"
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

func TestMain(m *testing.M) { devstacktest.Main(m) }

func record(id string, at time.Time) archive.Record {
	return archive.Record{
		ID: id, Source: "ses", Key: "archive/" + id + ".eml", RawKey: "inbound/" + id,
		ReceivedAt: at, ArchivedAt: at.Add(time.Second),
		EnvelopeFrom: "ana@example.org",
		Recipients:   []string{"sales@example.com", "SALES@example.com", "ops@example.com"},
		MessageID:    id + "@example.org",
		References:   []string{"root@example.org"},
		From:         []mail.Address{{Name: "Ana Lim", Address: "Ana@Example.org"}},
		To:           []mail.Address{{Address: "sales@example.com"}},
		Subject:      "报价 request " + id,
		Size:         1234,
		SHA256:       "ab12",
		Attachments:  []mail.Attachment{{Filename: "quote.pdf", ContentType: "application/pdf", Size: 99, SHA256: "cd34"}},
		Verdicts:     archive.Verdicts{Spam: "PASS", Virus: "PASS", DMARC: "FAIL", DMARCPolicy: "REJECT"},
		Flags:        []string{"bad-date"},
	}
}

func TestArchiveIndexRoundTrip(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	table := devstacktest.Table(t, "ArchiveTable")
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, table)

	at := time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.UTC)
	want := record("m1", at)
	if err := idx.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := idx.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != want.Subject || got.FromAddress() != "ana@example.org" || !got.ReceivedAt.Equal(at) ||
		len(got.Attachments) != 1 || got.Attachments[0].SHA256 != "cd34" || got.Verdicts != want.Verdicts ||
		len(got.Recipients) != 3 || got.References[0] != "root@example.org" {
		t.Errorf("round trip lost data:\n got %+v\nwant %+v", got, want)
	}

	if _, err := idx.Get(ctx, "absent"); !fault.Is(err, fault.NotFound) {
		t.Errorf("Get(absent) error = %v, want NotFound", err)
	}
	if err := idx.Put(ctx, want); !fault.Is(err, fault.Conflict) {
		t.Errorf("second Put error = %v, want Conflict", err)
	}
}

// TestArchiveIndexAccessPatterns checks the queries docs/data-model.md promises (A3–A6) against
// the real table definition from template.yaml.
func TestArchiveIndexAccessPatterns(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	table := devstacktest.Table(t, "ArchiveTable")
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, table)
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := idx.Put(ctx, record(fmt.Sprintf("m%d", i), day.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	query := func(in *dynamodb.QueryInput) []string {
		t.Helper()
		in.TableName = &table
		out, err := clients.DynamoDB.Query(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range out.Items {
			ids = append(ids, it["id"].(*types.AttributeValueMemberS).Value)
		}
		return ids
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	tests := []struct {
		name string
		in   *dynamodb.QueryInput
		want []string
	}{
		{"A4 mailbox newest first, recipients deduplicated case-insensitively", &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("BOX#sales@example.com")},
			ScanIndexForward:          aws.Bool(false),
		}, []string{"m2", "m1", "m0"}},
		{"A4 mailbox time range", &dynamodb.QueryInput{
			KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :a AND :b"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": s("BOX#ops@example.com"), ":a": s("2026-11-23T00:30"), ":b": s("2026-11-23T01:30")},
		}, []string{"m1"}},
		{"A5 by sender", &dynamodb.QueryInput{
			IndexName:                 aws.String("GSI2"),
			KeyConditionExpression:    aws.String("GSI2PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("FROM#ana@example.org")},
		}, []string{"m0", "m1", "m2"}},
		{"A6 by day", &dynamodb.QueryInput{
			IndexName:                 aws.String("GSI3"),
			KeyConditionExpression:    aws.String("GSI3PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("DAY#2026-11-23")},
		}, []string{"m0", "m1", "m2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := query(tt.in); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	// A3 is keys-only; the id comes from the table key.
	out, err := clients.DynamoDB.Query(ctx, &dynamodb.QueryInput{
		TableName: &table, IndexName: aws.String("GSI1"),
		KeyConditionExpression:    aws.String("GSI1PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("MID#m1@example.org")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != 1 || out.Items[0]["PK"].(*types.AttributeValueMemberS).Value != "MSG#m1" {
		t.Errorf("A3 by Message-ID: items = %v, want MSG#m1", out.Items)
	}
}

// Concurrent deliveries of the same message: exactly one Put wins, the others see Conflict.
func TestArchiveIndexConcurrentPut(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, devstacktest.Table(t, "ArchiveTable"))
	rec := record("race", time.Now().UTC())
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i] = idx.Put(ctx, rec) })
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		switch {
		case err == nil:
			wins++
		case !fault.Is(err, fault.Conflict) && !fault.Is(err, fault.Transient):
			t.Errorf("unexpected error kind %v: %v", fault.KindOf(err), err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent Puts succeeded, want exactly 1", wins)
	}
}

package dynamo

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
)

// ExportListings feeds exports from the archive table: the listing items of mailboxes (BOX#)
// and groups (GRP#), oldest first and merged into one list without repeats (docs/data-model.md,
// A13), and the records of what they list, a batch at a time (A14). A listing's sort key,
// <receivedAt>#<id>, is the same in every partition that lists the message, so it is both the
// merge order and the position an export resumes after.
type ExportListings struct {
	client *dynamodb.Client
	table  string
	// PageSize is how many entries one page of a source holds and one Query reads; default
	// 100, BatchGetItem's most keys.
	PageSize int
}

var (
	_ export.Listings = (*ExportListings)(nil)
	_ export.Records  = (*ExportListings)(nil)
)

// NewExportListings returns the export listings of the archive table.
func NewExportListings(client *dynamodb.Client, table string) *ExportListings {
	return &ExportListings{client: client, table: table, PageSize: 100}
}

// Open lists l's messages after the sort key after ("" for the start).
func (x *ExportListings) Open(ctx context.Context, l export.Listing, after string) (export.Source, error) {
	if l.Search != "" {
		return nil, fault.New(fault.Internal, "dynamo.ExportListings.Open", "a search is not a listing of this table")
	}
	src := &mergedListing{x: x, low: "0", high: "~", last: after}
	if !l.From.IsZero() {
		src.low = l.From.UTC().Format(sortTime)
	}
	if !l.To.IsZero() {
		// '~' sorts after the '#' and id that follow the time: mail received at To is in.
		src.high = l.To.UTC().Format(sortTime) + "~"
	}
	var pks []string
	for _, m := range l.Mailboxes {
		pks = append(pks, "BOX#"+m)
	}
	for _, g := range l.Groups {
		pks = append(pks, "GRP#"+g)
	}
	slices.Sort(pks)
	for _, pk := range slices.Compact(pks) {
		p := &listingPartition{pk: pk}
		if after != "" {
			p.start = map[string]types.AttributeValue{"PK": str(pk), "SK": str(after)}
		}
		src.parts = append(src.parts, p)
	}
	return src, nil
}

type listingEntry struct{ sk, id string }

type listingPartition struct {
	pk    string
	items []listingEntry
	start map[string]types.AttributeValue
	done  bool
}

type mergedListing struct {
	x         *ExportListings
	parts     []*listingPartition
	low, high string
	last      string // the sort key of the last entry given out
}

func (m *mergedListing) pageSize() int {
	if m.x.PageSize > 0 {
		return m.x.PageSize
	}
	return 100
}

// fill reads the partition's next page when it has nothing left in hand.
func (m *mergedListing) fill(ctx context.Context, p *listingPartition) error {
	const op = "dynamo.ExportListings"
	for len(p.items) == 0 && !p.done {
		out, err := m.x.client.Query(ctx, &dynamodb.QueryInput{
			TableName:              &m.x.table,
			KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :low AND :high"),
			ProjectionExpression:   aws.String("SK, id"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(p.pk), ":low": str(m.low), ":high": str(m.high),
			},
			ExclusiveStartKey: p.start,
			Limit:             aws.Int32(int32(m.pageSize())),
		})
		if err != nil {
			return translate(op, err)
		}
		for _, it := range out.Items {
			sk, _ := it["SK"].(*types.AttributeValueMemberS)
			id, _ := it["id"].(*types.AttributeValueMemberS)
			if sk == nil || id == nil {
				return fault.New(fault.Internal, op, "listing item in %s without SK or id", p.pk)
			}
			p.items = append(p.items, listingEntry{sk: sk.Value, id: id.Value})
		}
		p.start = out.LastEvaluatedKey
		p.done = len(p.start) == 0
	}
	return nil
}

// Next merges the partitions' heads in sort-key order, a message listed in several once.
func (m *mergedListing) Next(ctx context.Context) ([]export.Entry, bool, error) {
	var out []export.Entry
	for len(out) < m.pageSize() {
		var head *listingEntry
		for _, p := range m.parts {
			if err := m.fill(ctx, p); err != nil {
				return nil, false, err
			}
			if len(p.items) > 0 && (head == nil || p.items[0].sk < head.sk) {
				head = &p.items[0]
			}
		}
		if head == nil {
			return out, true, nil
		}
		e := *head
		for _, p := range m.parts {
			for len(p.items) > 0 && p.items[0].sk <= e.sk {
				p.items = p.items[1:]
			}
		}
		if e.sk <= m.last {
			continue
		}
		m.last = e.sk
		out = append(out, export.Entry{ID: e.id, After: e.sk})
	}
	return out, false, nil
}

// recordAttributes are what an export needs of a record: where the original is and the
// envelope it came with.
var recordAttributes = []string{"id", "key", "receivedAt", "envelopeFrom", "sha256", "size", "source", "archivedAt"}

// Records reads the records of ids (BatchGetItem, 100 keys a request); ids without a record
// (destroyed since they were listed) are left out.
func (x *ExportListings) Records(ctx context.Context, ids []string) (map[string]archive.Record, error) {
	const op = "dynamo.ExportListings.Records"
	names := map[string]string{}
	proj := ""
	for i, a := range recordAttributes {
		n := fmt.Sprintf("#a%d", i)
		names[n] = a
		if i > 0 {
			proj += ", "
		}
		proj += n
	}
	out := make(map[string]archive.Record, len(ids))
	uniq := slices.Clone(ids)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	for batch := range slices.Chunk(uniq, 100) {
		keys := make([]map[string]types.AttributeValue, len(batch))
		for i, id := range batch {
			keys[i] = messageKey(id)
		}
		req := map[string]types.KeysAndAttributes{x.table: {
			Keys: keys, ProjectionExpression: aws.String(proj), ExpressionAttributeNames: names,
		}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt == 8 {
					return nil, fault.New(fault.Transient, op, "DynamoDB left keys unprocessed %d times", attempt)
				}
				select {
				case <-ctx.Done():
					return nil, fault.Wrap(fault.Transient, op, ctx.Err())
				case <-time.After(time.Duration(25<<attempt) * time.Millisecond):
				}
			}
			res, err := x.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, translate(op, err)
			}
			for _, item := range res.Responses[x.table] {
				var r archive.Record
				if err := unmarshalItem(item, &r); err != nil {
					return nil, fault.Wrap(fault.Internal, op, err)
				}
				out[r.ID] = r
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

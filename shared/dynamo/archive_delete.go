package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/retention"
)

// RetentionArchive is the archive table as the retention job reads and deletes it: the day index
// (GSI3, access pattern A6) for candidates, the records themselves, and the deletion of a record
// with every listing of it.
type RetentionArchive struct {
	index  *ArchiveIndex
	client *dynamodb.Client
	table  string
}

var _ retention.Index = (*RetentionArchive)(nil)

// NewRetentionArchive returns the retention view of the archive table.
func NewRetentionArchive(client *dynamodb.Client, table string) *RetentionArchive {
	return &RetentionArchive{index: NewArchiveIndex(client, table), client: client, table: table}
}

// retentionMaxBatchWrite is DynamoDB's limit on items in one BatchWriteItem call.
const retentionMaxBatchWrite = 25

// retentionDayPK and retentionSortKey are the day index's keys, as ArchiveIndex.Put writes them.
func retentionDayPK(day time.Time) string { return "DAY#" + day.UTC().Format(time.DateOnly) }

func retentionSortKey(t time.Time) string { return t.UTC().Format(sortTime) }

// Candidates reads one page of a day's partition of GSI3 in order of receipt: the messages
// received after q.After and up to q.Until, after the position q.From. The bounds are a key range
// (GSI3SK is <receivedAt>#<id>), so only those messages are read. GSI3 is eventually consistent:
// a message deleted a moment ago may still be listed, and Records then leaves it out.
func (x *RetentionArchive) Candidates(ctx context.Context, q retention.CandidateQuery) ([]retention.Candidate, bool, error) {
	const op = "dynamo.RetentionArchive.Candidates"
	day := q.Day.UTC()
	lo := retentionSortKey(day)
	if !q.After.IsZero() && !q.After.Before(day) {
		// "~" sorts after every id character, so a message received at exactly After is left out.
		lo = retentionSortKey(q.After) + "#~"
	}
	hi := retentionSortKey(day.Add(retention.Day - time.Nanosecond))
	if q.Until.Before(day.Add(retention.Day)) {
		hi = retentionSortKey(q.Until)
	}
	hi += "#~"
	if lo > hi {
		return nil, false, nil
	}
	in := &dynamodb.QueryInput{
		TableName:              &x.table,
		IndexName:              aws.String("GSI3"),
		KeyConditionExpression: aws.String("GSI3PK = :pk AND GSI3SK BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(retentionDayPK(day)), ":lo": str(lo), ":hi": str(hi),
		},
		ProjectionExpression: aws.String("GSI3SK, id, receivedAt"),
		Limit:                aws.Int32(int32(max(q.Limit, 1))),
	}
	if q.From != "" {
		_, id, ok := strings.Cut(q.From, "#")
		if !ok || id == "" {
			return nil, false, fault.New(fault.Internal, op, "position %q is not a day index key", q.From)
		}
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			"GSI3PK": str(retentionDayPK(day)), "GSI3SK": str(q.From), "PK": str("MSG#" + id), "SK": str("MSG"),
		}
	}
	out, err := x.client.Query(ctx, in)
	if err != nil {
		return nil, false, translate(op, err)
	}
	page := make([]retention.Candidate, 0, len(out.Items))
	for _, it := range out.Items {
		var c struct {
			GSI3SK     string    `json:"GSI3SK"`
			ID         string    `json:"id"`
			ReceivedAt time.Time `json:"receivedAt"`
		}
		if err := unmarshalItem(it, &c); err != nil {
			return nil, false, fault.Wrap(fault.Internal, op, err)
		}
		page = append(page, retention.Candidate{ID: c.ID, ReceivedAt: c.ReceivedAt, Position: c.GSI3SK})
	}
	return page, len(out.LastEvaluatedKey) > 0, nil
}

// Records reads records by id with consistent BatchGetItem calls, 100 keys each.
func (x *RetentionArchive) Records(ctx context.Context, ids []string) (map[string]archive.Record, error) {
	const op = "dynamo.RetentionArchive.Records"
	out := make(map[string]archive.Record, len(ids))
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), maxBatchGet) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, id := range chunk {
			keys[i] = messageKey(id)
		}
		req := map[string]types.KeysAndAttributes{x.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == maxBatchAttempts {
				return nil, fault.New(fault.Transient, op, "records still unread after %d attempts", attempt)
			}
			if attempt > 0 {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return nil, translate(op, err)
				}
			}
			res, err := x.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, translate(op, err)
			}
			for _, it := range res.Responses[x.table] {
				var rec archive.Record
				if err := unmarshalItem(it, &rec); err != nil {
					return nil, fault.Wrap(fault.Internal, op, err)
				}
				out[rec.ID] = rec
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// Delete removes each record's item (and with it its GSI1–GSI3 entries) and every listing item
// ArchiveIndex.ListingKeys names, with BatchWriteItem calls of 25 deletions. Deleting an item that
// is not there is no error, so a deletion taken up again after a failure simply finishes.
func (x *RetentionArchive) Delete(ctx context.Context, recs []archive.Record) error {
	const op = "dynamo.RetentionArchive.Delete"
	var reqs []types.WriteRequest
	for _, r := range recs {
		reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: messageKey(r.ID)}})
		for _, k := range x.index.ListingKeys(r) {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
		}
	}
	return retentionBatchWrite(ctx, op, x.client, x.table, reqs)
}

// retentionBatchWrite sends write requests to one table 25 at a time, a few requests at once,
// sending again what DynamoDB left unprocessed (it throttles that way) with backoff. The requests
// are independent (each item is written or deleted whole), so their order does not matter.
func retentionBatchWrite(ctx context.Context, op string, client *dynamodb.Client, table string, reqs []types.WriteRequest) error {
	chunks := slices.Collect(slices.Chunk(reqs, retentionMaxBatchWrite))
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, retentionWriters)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = retentionWriteChunk(ctx, op, client, table, chunk)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// retentionWriters is how many BatchWriteItem requests one deletion has in flight.
const retentionWriters = 8

func retentionWriteChunk(ctx context.Context, op string, client *dynamodb.Client, table string, chunk []types.WriteRequest) error {
	req := map[string][]types.WriteRequest{table: chunk}
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt == maxBatchAttempts {
			return fault.New(fault.Transient, op, "%d writes still unprocessed after %d attempts", len(req[table]), attempt)
		}
		if attempt > 0 {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return translate(op, err)
			}
		}
		out, err := client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			return translate(op, fmt.Errorf("batch write: %w", err))
		}
		req = out.UnprocessedItems
	}
	return nil
}

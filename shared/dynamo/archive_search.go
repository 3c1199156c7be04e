package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/fault"
)

var _ archive.Searcher = (*ArchiveIndex)(nil)

// What one page of a search may read. A filter is applied to the items a Query returns, so a
// selective one over a large listing could otherwise read the whole listing for one page; the
// page stops at these bounds and its cursor goes on from there. A search by date alone costs a
// request per day read, empty or not. Variables only so that tests can lower them.
var (
	searchMaxRequests = 100
	searchMaxExamined = 5000
)

const (
	// searchFilteredRead is the smallest read of a filtered search: fewer, larger reads.
	searchFilteredRead = 200
	searchMaxRead      = 1000
)

// listingShape is where a kind of listing lives: the table or an index, its key attributes, and
// the attributes of the key of an item read from it (a start key).
type listingShape struct {
	index    string
	pk, sk   string
	keyAttrs []string
	pkOf     func(archive.Listing) string
}

var listingShapes = map[string]listingShape{
	archive.ListMailbox: {pk: "PK", sk: "SK", keyAttrs: tableKey, pkOf: listingPK},
	archive.ListGroup:   {pk: "PK", sk: "SK", keyAttrs: tableKey, pkOf: listingPK},
	archive.ListLabel:   {pk: "PK", sk: "SK", keyAttrs: tableKey, pkOf: listingPK},
	archive.ListSender: {index: "GSI2", pk: "GSI2PK", sk: "GSI2SK", keyAttrs: gsi2Key,
		pkOf: func(l archive.Listing) string { return pfxFrom + l.Key }},
	archive.ListDay: {index: "GSI3", pk: "GSI3PK", sk: "GSI3SK", keyAttrs: gsi3Key},
}

// searchPartition is one partition a search reads; day is set for the day partitions of GSI3.
type searchPartition struct {
	pk, day string
}

// Search reads one page of a search (archive.Searcher). Every read is a Query of one partition's
// key range (docs/data-model.md, A4–A9), newest first: a mailbox, group or label listing in the
// table, a sender's messages in GSI2, or the days from p.To back to p.From in GSI3. The indexes,
// and the listings as this reads them, are eventually consistent: a message archived a moment ago
// may be missing for a moment.
func (x *ArchiveIndex) Search(ctx context.Context, p archive.Plan, after *archive.Position) ([]archive.Summary, *archive.Position, error) {
	const op = "dynamo.ArchiveIndex.Search"
	shape, ok := listingShapes[p.Listing.Kind]
	if !ok {
		return nil, nil, fault.New(fault.Internal, op, "no listing of kind %q", p.Listing.Kind)
	}
	// '~' sorts after the '#' and id that follow the time, so messages received at p.To are in.
	low, high := p.From.UTC().Format(sortTime), p.To.UTC().Format(sortTime)+"~"
	parts := searchPartitions(p, shape)
	limit := p.Limit
	if limit <= 0 {
		limit = archive.DefaultLimit
	}

	i, start := 0, map[string]types.AttributeValue(nil)
	if after != nil {
		var done bool
		var err error
		if i, start, done, err = resume(op, after, parts, shape, low, high); err != nil || done {
			return nil, nil, err
		}
	}

	// A page reads one match more than it holds, so that the last page has no cursor; each
	// match's position is kept to end the page after the one before it.
	var (
		items     []archive.Summary
		positions []archive.Position
		requests  int
		examined  int
	)
	for {
		part := parts[i]
		read := limit + 1 - len(items)
		if !p.Filter.Empty() {
			read = max(read, searchFilteredRead)
		}
		read = min(read, searchMaxRead, searchMaxExamined-examined)
		in := &dynamodb.QueryInput{
			TableName:                &x.table,
			KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :low AND :high"),
			ExpressionAttributeNames: map[string]string{"#pk": shape.pk, "#sk": shape.sk},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(part.pk), ":low": str(low), ":high": str(high),
			},
			ScanIndexForward:  aws.Bool(false),
			ExclusiveStartKey: start,
			Limit:             aws.Int32(int32(read)),
		}
		if shape.index != "" {
			in.IndexName = aws.String(shape.index)
		}
		out, err := x.client.Query(ctx, in)
		if err != nil {
			return nil, nil, translate(op, err)
		}
		requests++
		examined += len(out.Items)
		for _, it := range out.Items {
			var s archive.Summary
			if err := unmarshalItem(it, &s); err != nil {
				return nil, nil, fault.Wrap(fault.Internal, op, err)
			}
			if !p.Filter.Match(s) {
				continue
			}
			pos, err := positionOf(op, part.day, keyOf(it, shape.keyAttrs))
			if err != nil {
				return nil, nil, err
			}
			items, positions = append(items, s), append(positions, pos)
			if len(items) > limit {
				return items[:limit], &positions[limit-1], nil
			}
		}
		if len(out.LastEvaluatedKey) > 0 {
			start = out.LastEvaluatedKey
		} else if i++; i < len(parts) {
			start = nil
		} else {
			return items, nil, nil
		}
		if requests >= searchMaxRequests || examined >= searchMaxExamined {
			// Out of reads: the next page starts where the next read would have.
			pos, err := positionOf(op, parts[i].day, start)
			return items, &pos, err
		}
	}
}

// searchPartitions lists the partitions a search reads, newest first.
func searchPartitions(p archive.Plan, shape listingShape) []searchPartition {
	if p.Listing.Kind != archive.ListDay {
		return []searchPartition{{pk: shape.pkOf(p.Listing)}}
	}
	var parts []searchPartition
	first := utcDay(p.From)
	for day := utcDay(p.To); !day.Before(first); day = day.AddDate(0, 0, -1) {
		d := day.Format(time.DateOnly)
		parts = append(parts, searchPartition{pk: pfxArchiveDay + d, day: d})
	}
	return parts
}

// resume finds where a page starts from the position a cursor carried: the partition, and the
// start key checked against the partition and the query's range. done says there is nothing
// after it: its range has moved on since (a range of "the last 30 days" asked for later).
func resume(op string, after *archive.Position, parts []searchPartition, shape listingShape, low, high string) (i int, start map[string]types.AttributeValue, done bool, err error) {
	bad := fault.InvalidField(op, "cursor", "not a cursor of this search")
	if after.Day != "" {
		if after.Day < parts[len(parts)-1].day {
			return 0, nil, true, nil
		}
		i = -1
		for j, part := range parts {
			if part.day == after.Day {
				i = j
			}
		}
		if i < 0 {
			return 0, nil, false, bad
		}
	}
	if len(after.Key) == 0 {
		return i, nil, false, nil
	}
	start, done, err = startKey(op, cursor{Key: after.Key}, keyShape{
		attrs: shape.keyAttrs, partition: shape.pk, value: parts[i].pk, sort: shape.sk, low: low, high: high,
	})
	if err != nil {
		return 0, nil, false, bad
	}
	return i, start, done, nil
}

// positionOf is a position in partition day (none outside GSI3) after key.
func positionOf(op, day string, key map[string]types.AttributeValue) (archive.Position, error) {
	pos := archive.Position{Day: day}
	if len(key) == 0 {
		return pos, nil
	}
	pos.Key = make(map[string]string, len(key))
	for k, v := range key {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return archive.Position{}, fault.New(fault.Internal, op, "key attribute %s is %T, not a string", k, v)
		}
		pos.Key[k] = s.Value
	}
	return pos, nil
}

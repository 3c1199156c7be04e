package dynamo

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/fault"
)

// ArchiveIndex keeps archive records in the archive table. docs/data-model.md lists its keys and
// the query each serves.
type ArchiveIndex struct {
	client *dynamodb.Client
	table  string
}

var _ archive.Index = (*ArchiveIndex)(nil)

// NewArchiveIndex returns an index over the named table.
func NewArchiveIndex(client *dynamodb.Client, table string) *ArchiveIndex {
	return &ArchiveIndex{client: client, table: table}
}

// sortTime formats times so that they sort lexically in time order: fixed width, UTC.
const sortTime = "2006-01-02T15:04:05.000000000Z"

// Items are stored under their JSON names, so the item a person reads with the AWS CLI uses the
// same field names as the API and `mailroom parse`.
func marshalItem(v any) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(v, func(o *attributevalue.EncoderOptions) {
		o.TagKey = "json"
	})
}

func unmarshalItem(item map[string]types.AttributeValue, v any) error {
	return attributevalue.UnmarshalMapWithOptions(item, v, func(o *attributevalue.DecoderOptions) {
		o.TagKey = "json"
	})
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func messageKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": str("MSG#" + id), "SK": str("MSG")}
}

// Get returns the record with the given id. It reads consistently: the inbound function relies on
// it to see a record written a moment ago by a concurrent delivery.
func (x *ArchiveIndex) Get(ctx context.Context, id string) (archive.Record, error) {
	const op = "dynamo.ArchiveIndex.Get"
	out, err := x.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &x.table,
		Key:            messageKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return archive.Record{}, translate(op, err)
	}
	if out.Item == nil {
		return archive.Record{}, fault.New(fault.NotFound, op, "no archived message %q", id)
	}
	var rec archive.Record
	if err := unmarshalItem(out.Item, &rec); err != nil {
		return archive.Record{}, fault.Wrap(fault.Internal, op, err)
	}
	return rec, nil
}

// Put writes the message item and one listing item per envelope recipient in one transaction, so
// a message is findable everywhere or nowhere. The message item is conditional: a second Put of
// the same id fails with fault.Conflict and writes nothing.
func (x *ArchiveIndex) Put(ctx context.Context, r archive.Record) error {
	const op = "dynamo.ArchiveIndex.Put"
	item, err := marshalItem(r)
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	received := r.ReceivedAt.UTC()
	sk := received.Format(sortTime) + "#" + r.ID
	summary := map[string]types.AttributeValue{
		"id":             item["id"],
		"receivedAt":     item["receivedAt"],
		"size":           item["size"],
		"hasAttachments": &types.AttributeValueMemberBOOL{Value: r.HasAttachments()},
	}
	for _, name := range []string{"subject", "labels", "flags"} {
		if v, ok := item[name]; ok {
			summary[name] = v
		}
	}
	if from := r.FromAddress(); from != "" {
		summary["fromAddr"] = str(from)
		item["GSI2PK"], item["GSI2SK"] = str("FROM#"+from), str(sk)
	}
	for k, v := range summary {
		item[k] = v
	}
	item["PK"], item["SK"] = str("MSG#"+r.ID), str("MSG")
	item["GSI3PK"], item["GSI3SK"] = str("DAY#"+received.Format(time.DateOnly)), str(sk)
	if r.MessageID != "" {
		item["GSI1PK"], item["GSI1SK"] = str("MID#"+r.MessageID), str(sk)
	}

	writes := []types.TransactWriteItem{{Put: &types.Put{
		TableName:           &x.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	}}}
	seen := map[string]bool{}
	for _, rcpt := range r.Recipients {
		box := strings.ToLower(rcpt)
		if seen[box] || len(writes) == maxTransactItems {
			continue
		}
		seen[box] = true
		listing := map[string]types.AttributeValue{"PK": str("BOX#" + box), "SK": str(sk)}
		for k, v := range summary {
			listing[k] = v
		}
		writes = append(writes, types.TransactWriteItem{Put: &types.Put{TableName: &x.table, Item: listing}})
	}
	// No ClientRequestToken: should an SDK retry repeat a write that had succeeded, the condition
	// fails, the caller sees Conflict and reads back the record, which is the one it wrote.
	_, err = x.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	return translate(op, err)
}

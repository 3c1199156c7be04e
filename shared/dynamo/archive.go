package dynamo

import (
	"context"
	"maps"
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

// Put writes the message item and its listing items (archive.Record.Listings: one per envelope
// recipient, group delivered through and label) in one transaction, so a message is findable
// everywhere or nowhere. The message item is conditional: a second Put of the same id fails with
// fault.Conflict and writes nothing.
func (x *ArchiveIndex) Put(ctx context.Context, r archive.Record) error {
	const op = "dynamo.ArchiveIndex.Put"
	// A record written without archive.Service (an import) is flagged here instead.
	r.FlagCutListings()
	item, err := marshalItem(r)
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	received := r.ReceivedAt.UTC()
	sk := listingSK(r)
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
		item["GSI2PK"], item["GSI2SK"] = str(pfxFrom+from), str(sk)
	}
	for k, v := range summary {
		item[k] = v
	}
	item["PK"], item["SK"] = str("MSG#"+r.ID), str("MSG")
	item["GSI3PK"], item["GSI3SK"] = str(pfxArchiveDay+received.Format(time.DateOnly)), str(sk)
	if r.MessageID != "" {
		item["GSI1PK"], item["GSI1SK"] = str("MID#"+r.MessageID), str(sk)
	}

	writes := []types.TransactWriteItem{{Put: &types.Put{
		TableName:           &x.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(PK)"),
	}}}
	// archive.MaxListings keeps the transaction within DynamoDB's 100 items.
	for _, key := range x.ListingKeys(r) {
		listing := maps.Clone(summary)
		maps.Copy(listing, key)
		writes = append(writes, types.TransactWriteItem{Put: &types.Put{TableName: &x.table, Item: listing}})
	}
	// No ClientRequestToken: should an SDK retry repeat a write that had succeeded, the condition
	// fails, the caller sees Conflict and reads back the record, which is the one it wrote.
	_, err = x.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	return translate(op, err)
}

// Key prefixes of the archive table's listings and indexes.
const (
	pfxMailboxListing = "BOX#"
	pfxGroupListing   = "GRP#"
	pfxLabelListing   = "LBL#"
	pfxFrom           = "FROM#"
	pfxArchiveDay     = "DAY#"
)

// listingPK is the partition key of a listing: BOX#<address>, GRP#<group id>, LBL#<label>.
func listingPK(l archive.Listing) string {
	switch l.Kind {
	case archive.ListGroup:
		return pfxGroupListing + l.Key
	case archive.ListLabel:
		return pfxLabelListing + l.Key
	default:
		return pfxMailboxListing + l.Key
	}
}

// listingSK is the sort key of a record's listing items and index entries: <receivedAt>#<id>,
// so a listing reads in time order and a time range is a key range.
func listingSK(r archive.Record) string {
	return r.ReceivedAt.UTC().Format(sortTime) + "#" + r.ID
}

// ListingKeys returns the key (PK and SK) of every listing item Put writes for r: one per
// archive.Record.Listings entry, in that order. Whatever deletes a record (retention) deletes
// these with it; the record's own item is PK=MSG#<id>, SK=MSG.
func (x *ArchiveIndex) ListingKeys(r archive.Record) []map[string]types.AttributeValue {
	sk := listingSK(r)
	ls := r.Listings()
	keys := make([]map[string]types.AttributeValue, len(ls))
	for i, l := range ls {
		keys[i] = map[string]types.AttributeValue{"PK": str(listingPK(l)), "SK": str(sk)}
	}
	return keys
}

package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
)

// Jobs keeps export and import jobs in the state table (docs/data-model.md, S14): a job's state
// as one JSON document under PK=JOB#<kind>#<id>, SK=STATE, and each part an export uploaded
// (its ETag, for a zip its entries' records) under SK=PART#<number>#<piece> in the same
// partition, written in one transaction with the state that counts it.
type Jobs struct {
	client *dynamodb.Client
	table  string
	// Keep is how long a job is kept after its last save (TTL); default 7 days, more than the
	// two days the bucket keeps an unfinished upload.
	Keep time.Duration
}

var _ export.Jobs = (*Jobs)(nil)

// NewJobs returns the jobs of the state table.
func NewJobs(client *dynamodb.Client, table string) *Jobs {
	return &Jobs{client: client, table: table, Keep: 7 * 24 * time.Hour}
}

// maxPiece is the most entry bytes one part item holds, well under DynamoDB's 400 KB.
const maxPiece = 300 << 10

func jobPK(kind, id string) string { return "JOB#" + kind + "#" + id }

func (x *Jobs) item(j export.Job) (map[string]types.AttributeValue, error) {
	doc, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return map[string]types.AttributeValue{
		"PK":        str(jobPK(j.Kind, j.ID)),
		"SK":        str("STATE"),
		"kind":      str(j.Kind),
		"id":        str(j.ID),
		"state":     str(j.State),
		"version":   num(j.Version),
		"job":       str(string(doc)),
		"expiresAt": num(j.UpdatedAt.Add(x.Keep).Unix()),
	}, nil
}

// Create stores a new job.
func (x *Jobs) Create(ctx context.Context, j export.Job) error {
	const op = "dynamo.Jobs.Create"
	item, err := x.item(j)
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	_, err = x.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &x.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)"),
	})
	return translate(op, err)
}

// Get reads a job consistently: the invocation before may have saved it a moment ago.
func (x *Jobs) Get(ctx context.Context, kind, id string) (export.Job, error) {
	const op = "dynamo.Jobs.Get"
	out, err := x.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &x.table,
		Key:            map[string]types.AttributeValue{"PK": str(jobPK(kind, id)), "SK": str("STATE")},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return export.Job{}, translate(op, err)
	}
	if out.Item == nil {
		return export.Job{}, fault.New(fault.NotFound, op, "no %s job %q", kind, id)
	}
	doc, ok := out.Item["job"].(*types.AttributeValueMemberS)
	if !ok {
		return export.Job{}, fault.New(fault.Internal, op, "job %s has no state", id)
	}
	var j export.Job
	if err := json.Unmarshal([]byte(doc.Value), &j); err != nil {
		return export.Job{}, fault.Wrap(fault.Internal, op, err)
	}
	return j, nil
}

// Save writes the job on condition of its version, with the part when there is one.
func (x *Jobs) Save(ctx context.Context, j *export.Job, part *export.Part) error {
	const op = "dynamo.Jobs.Save"
	next := *j
	next.Version++
	item, err := x.item(next)
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	cond := &types.Put{
		TableName:                 &x.table,
		Item:                      item,
		ConditionExpression:       aws.String("#v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": num(j.Version)},
	}
	if part == nil {
		_, err = x.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: cond.TableName, Item: cond.Item, ConditionExpression: cond.ConditionExpression,
			ExpressionAttributeNames: cond.ExpressionAttributeNames, ExpressionAttributeValues: cond.ExpressionAttributeValues,
		})
	} else {
		writes := []types.TransactWriteItem{{Put: cond}}
		for i, piece := range pieces(part.Entries) {
			it := map[string]types.AttributeValue{
				"PK":        item["PK"],
				"SK":        str(fmt.Sprintf("PART#%05d#%03d", part.Number, i)),
				"expiresAt": item["expiresAt"],
			}
			if i == 0 {
				it["etag"], it["size"] = str(part.ETag), num(part.Size)
			}
			if len(piece) > 0 {
				it["entries"] = &types.AttributeValueMemberB{Value: piece}
			}
			writes = append(writes, types.TransactWriteItem{Put: &types.Put{TableName: &x.table, Item: it}})
		}
		if len(writes) > maxTransactItems {
			return fault.New(fault.Internal, op, "part %d has too many entries for one transaction", part.Number)
		}
		_, err = x.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: writes})
	}
	if err != nil {
		return translate(op, err)
	}
	j.Version = next.Version
	return nil
}

// pieces cuts entries into item-sized pieces; a part without entries still has its piece 0.
func pieces(entries []byte) [][]byte {
	var out [][]byte
	for len(entries) > maxPiece {
		out = append(out, entries[:maxPiece])
		entries = entries[maxPiece:]
	}
	return append(out, entries)
}

// Parts reads the job's parts in order, joining each part's pieces.
func (x *Jobs) Parts(ctx context.Context, kind, id string, fn func(export.Part) error) error {
	const op = "dynamo.Jobs.Parts"
	p := dynamodb.NewQueryPaginator(x.client, &dynamodb.QueryInput{
		TableName:              &x.table,
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :part)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(jobPK(kind, id)), ":part": str("PART#"),
		},
		ConsistentRead: aws.Bool(true),
	})
	var cur *export.Part
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return translate(op, err)
		}
		for _, it := range page.Items {
			sk := it["SK"].(*types.AttributeValueMemberS).Value
			fields := strings.Split(sk, "#") // PART, number, piece
			if len(fields) != 3 {
				return fault.New(fault.Internal, op, "part item %q", sk)
			}
			n, _ := strconv.Atoi(fields[1])
			if fields[2] == "000" {
				if cur != nil {
					if err := fn(*cur); err != nil {
						return err
					}
				}
				cur = &export.Part{Number: n}
				if v, ok := it["etag"].(*types.AttributeValueMemberS); ok {
					cur.ETag = v.Value
				}
				if v, ok := it["size"].(*types.AttributeValueMemberN); ok {
					cur.Size, _ = strconv.ParseInt(v.Value, 10, 64)
				}
			}
			if cur == nil || cur.Number != n {
				return fault.New(fault.Internal, op, "part item %q without its first piece", sk)
			}
			if v, ok := it["entries"].(*types.AttributeValueMemberB); ok {
				cur.Entries = append(cur.Entries, v.Value...)
			}
		}
	}
	if cur != nil {
		return fn(*cur)
	}
	return nil
}

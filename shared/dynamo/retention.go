package dynamo

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/retention"
)

// RetentionState keeps the retention job's cursor and its destruction records in the state table
// (docs/data-model.md, S7 and S12), and checks the directory's policy and hold versions in the
// same transaction as each claim.
type RetentionState struct {
	client    *dynamodb.Client
	table     string // the state table
	directory string // the directory table, where the settings' versions are
}

var _ retention.State = (*RetentionState)(nil)

// NewRetentionState returns the retention job's state in stateTable, checked against the settings
// in directoryTable.
func NewRetentionState(client *dynamodb.Client, stateTable, directoryTable string) *RetentionState {
	return &RetentionState{client: client, table: stateTable, directory: directoryTable}
}

// Keys of the job's items.
const (
	retentionJobPrefix       = "JOB#"
	retentionCursorSK        = "CURSOR"
	retentionDestroyedPrefix = "DESTROYED#"
	// retentionClaimChunk leaves room in a transaction of 100 for the two version checks.
	retentionClaimChunk = maxTransactItems - 2
)

type retentionCursorItem struct {
	PK string `json:"PK"`
	SK string `json:"SK"`
	retention.Cursor
}

// Cursor reads a job's cursor consistently.
func (s *RetentionState) Cursor(ctx context.Context, job string) (retention.Cursor, error) {
	const op = "dynamo.RetentionState.Cursor"
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(retentionJobPrefix+job, retentionCursorSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return retention.Cursor{}, translate(op, err)
	}
	if out.Item == nil {
		return retention.Cursor{}, nil
	}
	var it retentionCursorItem
	if err := unmarshalItem(out.Item, &it); err != nil {
		return retention.Cursor{}, fault.Wrap(fault.Internal, op, err)
	}
	return it.Cursor, nil
}

// SaveCursor replaces the cursor on condition that it is still at c.Version, storing c.Version+1.
func (s *RetentionState) SaveCursor(ctx context.Context, job string, c retention.Cursor) error {
	const op = "dynamo.RetentionState.SaveCursor"
	expect := c.Version
	c.Version++
	item, err := marshalItem(retentionCursorItem{PK: retentionJobPrefix + job, SK: retentionCursorSK, Cursor: c})
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	cond, names, values, err := versionCondition(expect)
	if err != nil {
		return err
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	})
	return translate(op, err)
}

// retentionRecordKey is a destruction record's key: the month and time of its pass, then the
// message, so a pass taken up again writes the same record, and a month's destructions are one
// partition in time order.
func retentionRecordKey(run time.Time, id string) map[string]types.AttributeValue {
	run = run.UTC()
	return key(retentionDestroyedPrefix+run.Format("2006-01"), run.Format(sortTime)+"#"+id)
}

type retentionRecordItem struct {
	PK string `json:"PK"`
	SK string `json:"SK"`
	retention.Destruction
}

func (s *RetentionState) recordItem(d retention.Destruction) (map[string]types.AttributeValue, error) {
	k := retentionRecordKey(d.At, d.ID)
	return marshalItem(retentionRecordItem{
		PK: k["PK"].(*types.AttributeValueMemberS).Value, SK: k["SK"].(*types.AttributeValueMemberS).Value, Destruction: d,
	})
}

// versionCheck is a condition on a setting kind's version item (docs/data-model.md, settings):
// no item is version 0.
func (s *RetentionState) versionCheck(kind string, v int64) types.TransactWriteItem {
	cond, names, values, _ := versionCondition(v)
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: &s.directory, Key: key(settingPK(kind), settingVersionSK),
		ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}}
}

// Claim writes pending destruction records, 98 to a transaction with a check each that the
// policies and holds are still at v. A failed check is fault.Conflict; the transactions before it
// stay committed (their records are counted in the result), and the job claims those messages
// again or cancels their records.
func (s *RetentionState) Claim(ctx context.Context, ds []retention.Destruction, v retention.Versions) (int, error) {
	const op = "dynamo.RetentionState.Claim"
	n := 0
	for chunk := range slices.Chunk(ds, retentionClaimChunk) {
		items := []types.TransactWriteItem{
			s.versionCheck(retention.PolicyKind, v.Policies),
			s.versionCheck(retention.HoldKind, v.Holds),
		}
		for _, d := range chunk {
			item, err := s.recordItem(d)
			if err != nil {
				return n, fault.Wrap(fault.Internal, op, err)
			}
			items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}})
		}
		if _, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			return n, translate(op, err)
		}
		n += len(chunk)
	}
	return n, nil
}

// Finish writes destruction records in their final state, 25 to a BatchWriteItem call.
func (s *RetentionState) Finish(ctx context.Context, ds []retention.Destruction) error {
	const op = "dynamo.RetentionState.Finish"
	reqs := make([]types.WriteRequest, 0, len(ds))
	for _, d := range ds {
		item, err := s.recordItem(d)
		if err != nil {
			return fault.Wrap(fault.Internal, op, err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	return retentionBatchWrite(ctx, op, s.client, s.table, reqs)
}

// Destructions reads a pass's records of ids, consistently.
func (s *RetentionState) Destructions(ctx context.Context, run string, at time.Time, ids []string) (map[string]retention.Destruction, error) {
	const op = "dynamo.RetentionState.Destructions"
	out := map[string]retention.Destruction{}
	for chunk := range slices.Chunk(slices.Compact(slices.Sorted(slices.Values(ids))), maxBatchGet) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, id := range chunk {
			keys[i] = retentionRecordKey(at, id)
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == maxBatchAttempts {
				return nil, fault.New(fault.Transient, op, "records still unread after %d attempts", attempt)
			}
			if attempt > 0 {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return nil, translate(op, err)
				}
			}
			res, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, translate(op, err)
			}
			for _, it := range res.Responses[s.table] {
				var d retentionRecordItem
				if err := unmarshalItem(it, &d); err != nil {
					return nil, fault.Wrap(fault.Internal, op, err)
				}
				if d.Run == run {
					out[d.ID] = d.Destruction
				}
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// Destroyed lists the destruction records of the passes that ran in [from, to), in time order:
// one query per month partition. It is what an auditor asks for.
func (s *RetentionState) Destroyed(ctx context.Context, from, to time.Time) ([]retention.Destruction, error) {
	const op = "dynamo.RetentionState.Destroyed"
	from, to = from.UTC(), to.UTC()
	var out []retention.Destruction
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC); m.Before(to); m = m.AddDate(0, 1, 0) {
		p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
			TableName:              &s.table,
			KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(retentionDestroyedPrefix + m.Format("2006-01")),
				":lo": str(from.Format(sortTime)),
				":hi": str(to.Add(-time.Nanosecond).Format(sortTime) + "#~"),
			},
			ConsistentRead: aws.Bool(true),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, translate(op, err)
			}
			for _, it := range page.Items {
				var d retentionRecordItem
				if err := unmarshalItem(it, &d); err != nil {
					return nil, fault.Wrap(fault.Internal, op, err)
				}
				out = append(out, d.Destruction)
			}
		}
	}
	return out, nil
}

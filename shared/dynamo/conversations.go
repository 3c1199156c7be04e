package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/sla"
)

// Conversations keeps SLA conversations in the state table (docs/data-model.md, S5, S6, S10 and
// S11). Put writes everything one change touches in one transaction, so the due index, the
// report and the breach rows never disagree with the conversation:
//
//	conversation  PK=CONV#<id>                  SK=CONV               GSI1PK=DUE#<shard>, GSI1SK=<next>#<id> while Next is set
//	report row    PK=OPENED#<queue>#<YYYY-MM>   SK=<openedAt>#<id>    a copy of the conversation
//	breach row    PK=BREACHED#<queue>           SK=<id>               a copy, while waiting past the deadline
//	thread        PK=THREAD#<Message-ID>        SK=THREAD             conversations (string set), expiresAt
//
// The due index is spread over dueShards partitions of GSI1 by a hash of the id, so no single
// partition takes every conversation's writes; Due reads each shard's due range and merges.
type Conversations struct {
	client *dynamodb.Client
	table  string
	// ThreadKeep is how long a Message-ID stays threaded after the last Put that named it: a
	// reply to a message older than that opens a new conversation. Default 400 days.
	ThreadKeep time.Duration
	Now        func() time.Time
}

var _ sla.Store = (*Conversations)(nil)

// NewConversations returns the conversation store over the state table.
func NewConversations(client *dynamodb.Client, table string) *Conversations {
	return &Conversations{client: client, table: table, ThreadKeep: 400 * 24 * time.Hour, Now: time.Now}
}

const (
	pfxConv       = "CONV#"
	skConv        = "CONV"
	pfxDue        = "DUE#"
	pfxOpened     = "OPENED#"
	pfxBreached   = "BREACHED#"
	pfxThread     = "THREAD#"
	pfxThreadHash = "THREADH#"
	skThread      = "THREAD"

	// dueShards is how many GSI1 partitions the due index is spread over. Changing it moves
	// conversations between shards only as they are next written: Due must then read the old
	// shards too until every open conversation has been.
	dueShards = 4
	// maxThreadKey bounds a thread key that holds its Message-ID as it is; a longer Message-ID
	// is keyed by its SHA-256. DynamoDB allows 2,048 bytes in a partition key, and no real
	// Message-ID comes near 900 (a header line has at most 998 characters): the hash only keeps
	// odd input from failing the write.
	maxThreadKey = 900
	// threadsInPut is how many Message-IDs fit in Put's transaction beside the conversation, its
	// report row and its breach row.
	threadsInPut = maxTransactItems - 3
	// maxOpenedMonths bounds Opened's range, one query per month: a report over ten years is
	// a mistake (a zero from), not a question.
	maxOpenedMonths = 120
)

// conversationItem is the conversation with its keys; report and breach rows are the same
// attributes under their own keys, without the index keys.
type conversationItem struct {
	PK     string `json:"PK"`
	SK     string `json:"SK"`
	GSI1PK string `json:"GSI1PK,omitempty"`
	GSI1SK string `json:"GSI1SK,omitempty"`
	sla.Conversation
}

func conversationKey(id string) map[string]types.AttributeValue { return key(pfxConv+id, skConv) }

// dueShard is a stable hash of the id: the same conversation always lands in the same shard, so
// rewriting it replaces its index entry instead of adding one.
func dueShard(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return pfxDue + strconv.Itoa(int(h.Sum32()%dueShards))
}

func openedPK(queue string, at time.Time) string {
	return pfxOpened + queue + "#" + at.UTC().Format("2006-01")
}

// threadPK keys a Message-ID (lower case, without angle brackets). Hashed keys have a prefix of
// their own, so no Message-ID, however it is spelt, takes another's key.
func threadPK(messageID string) string {
	if len(pfxThread)+len(messageID) > maxThreadKey {
		sum := sha256.Sum256([]byte(messageID))
		return pfxThreadHash + hex.EncodeToString(sum[:])
	}
	return pfxThread + messageID
}

// conversationItems are the items Put writes whole: the conversation, its report row and, while
// it waits past its deadline, its breach row.
func conversationItems(c sla.Conversation) (conv, report, breach map[string]types.AttributeValue, err error) {
	it := conversationItem{PK: pfxConv + c.ID, SK: skConv, Conversation: c}
	if next := c.Next(); !next.IsZero() {
		it.GSI1PK, it.GSI1SK = dueShard(c.ID), next.UTC().Format(sortTime)+"#"+c.ID
	}
	if conv, err = marshalItem(it); err != nil {
		return nil, nil, nil, err
	}
	row := conversationItem{PK: openedPK(c.Queue, c.OpenedAt), SK: c.OpenedAt.UTC().Format(sortTime) + "#" + c.ID, Conversation: c}
	if report, err = marshalItem(row); err != nil {
		return nil, nil, nil, err
	}
	if breaching(c) {
		row.PK, row.SK = pfxBreached+c.Queue, c.ID
		if breach, err = marshalItem(row); err != nil {
			return nil, nil, nil, err
		}
	}
	return conv, report, breach, nil
}

func breaching(c sla.Conversation) bool { return c.State == sla.Waiting && c.Breached }

// Conversation reads a conversation consistently: every change is read, modified and written
// back on condition of its version.
func (x *Conversations) Conversation(ctx context.Context, id string) (sla.Conversation, error) {
	const op = "dynamo.Conversations.Conversation"
	out, err := x.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &x.table, Key: conversationKey(id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return sla.Conversation{}, translate(op, err)
	}
	if out.Item == nil {
		return sla.Conversation{}, fault.New(fault.NotFound, op, "no conversation %s", id)
	}
	var c sla.Conversation
	if err := unmarshalItem(out.Item, &c); err != nil {
		return sla.Conversation{}, fault.Wrap(fault.Internal, op, err)
	}
	return c, nil
}

// Put writes the conversation, its report row and its breach row (or the breach row's deletion)
// and threads the Message-IDs, in one transaction conditional on the conversation's version.
//
// Message-IDs beyond what the transaction holds (a message forwarded in many batches has one SES
// id per batch) are threaded first, in transactions of their own. Threading them to a
// conversation whose write then fails is harmless: a thread naming a conversation that does not
// exist is skipped by the service, and one naming an existing conversation is what the retry
// writes anyway. The first Message-IDs, which the service checks to see whether a message was
// applied, are always in the conversation's transaction.
func (x *Conversations) Put(ctx context.Context, c sla.Conversation, expect int64, messageIDs []string) error {
	const op = "dynamo.Conversations.Put"
	switch {
	case c.ID == "":
		return fault.InvalidField(op, "id", "missing")
	case c.Queue == "":
		return fault.InvalidField(op, "queue", "missing")
	case c.OpenedAt.IsZero():
		return fault.InvalidField(op, "openedAt", "missing")
	case expect < 0:
		return fault.InvalidField(op, "version", "expected version %d is negative", expect)
	case c.Version <= expect:
		// A write that does not move the version on would let a concurrent writer's condition
		// pass as well, and one of the two changes would be lost.
		return fault.InvalidField(op, "version", "version %d does not follow %d", c.Version, expect)
	}
	conv, report, breach, err := conversationItems(c)
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	threads := x.threadUpdates(c.ID, messageIDs)
	if len(threads) > threadsInPut {
		for chunk := range slices.Chunk(threads[threadsInPut:], maxTransactItems) {
			if _, err := x.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: chunk}); err != nil {
				return translate(op, err)
			}
		}
		threads = threads[:threadsInPut]
	}

	put := &types.Put{TableName: &x.table, Item: conv, ConditionExpression: aws.String("attribute_not_exists(PK)")}
	if expect > 0 {
		put.ConditionExpression = aws.String("#version = :expect")
		put.ExpressionAttributeNames = map[string]string{"#version": "version"}
		put.ExpressionAttributeValues = map[string]types.AttributeValue{":expect": num(expect)}
	}
	// The conversation comes first: a failed condition is always item 0's, the version's.
	items := []types.TransactWriteItem{{Put: put}, {Put: &types.Put{TableName: &x.table, Item: report}}}
	switch {
	case breach != nil:
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &x.table, Item: breach}})
	case expect > 0:
		// A new conversation has no breach row to delete.
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: &x.table, Key: key(pfxBreached+c.Queue, c.ID)}})
	}
	items = append(items, threads...)
	_, err = x.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return translate(op, err)
}

// threadUpdates adds the conversation to each Message-ID's thread item and pushes its expiry
// back. Ids are deduplicated by key: one transaction may not touch an item twice.
func (x *Conversations) threadUpdates(id string, messageIDs []string) []types.TransactWriteItem {
	exp := num(expiresAt(x.Now().Add(x.ThreadKeep)))
	seen := map[string]bool{}
	var out []types.TransactWriteItem
	for _, m := range messageIDs {
		pk := threadPK(m)
		if m == "" || seen[pk] {
			continue
		}
		seen[pk] = true
		out = append(out, types.TransactWriteItem{Update: &types.Update{
			TableName:                &x.table,
			Key:                      key(pk, skThread),
			UpdateExpression:         aws.String("SET #m = :m, expiresAt = :exp ADD #c :c"),
			ExpressionAttributeNames: map[string]string{"#m": "messageId", "#c": "conversations"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":m": str(m), ":exp": exp, ":c": &types.AttributeValueMemberSS{Value: []string{id}},
			},
		}})
	}
	return out
}

// Threads reads the thread items of the Message-IDs, a hundred to a request and consistently:
// the service asks whether a message it may have applied a moment ago was applied.
func (x *Conversations) Threads(ctx context.Context, messageIDs []string) (map[string][]string, error) {
	const op = "dynamo.Conversations.Threads"
	asked := map[string]string{} // key → Message-ID
	var keys []map[string]types.AttributeValue
	for _, m := range messageIDs {
		pk := threadPK(m)
		if _, ok := asked[pk]; ok || m == "" {
			continue
		}
		asked[pk] = m
		keys = append(keys, key(pk, skThread))
	}
	out := map[string][]string{}
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		req := map[string]types.KeysAndAttributes{x.table: {
			Keys:                     chunk,
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     aws.String("PK, #c"),
			ExpressionAttributeNames: map[string]string{"#c": "conversations"},
		}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == maxBatchAttempts {
				return nil, fault.New(fault.Transient, op, "threads still unread after %d attempts", attempt)
			}
			if attempt > 0 {
				// Unprocessed keys mean the table is throttling this read; back off before asking again.
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return nil, translate(op, err)
				}
			}
			res, err := x.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, translate(op, err)
			}
			for _, item := range res.Responses[x.table] {
				var it struct {
					PK            string   `json:"PK"`
					Conversations []string `json:"conversations"`
				}
				if err := unmarshalItem(item, &it); err != nil {
					return nil, fault.Wrap(fault.Internal, op, err)
				}
				if m, ok := asked[it.PK]; ok && len(it.Conversations) > 0 {
					slices.Sort(it.Conversations) // a set has no order; give the same one every time
					out[m] = it.Conversations
				}
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// Due reads each shard of the due index up to t, at most limit from each, and merges them by
// Next. It reads only due entries: about limit items a shard at most, whatever the number of open
// conversations.
//
// GSI1 is eventually consistent, so a conversation changed a moment ago may come back as it was
// (or not yet at all). The sweep writes on condition of the version it read, so a stale copy
// costs a Conflict and is looked at again by the next sweep; nothing is done twice.
func (x *Conversations) Due(ctx context.Context, t time.Time, limit int) ([]sla.Conversation, error) {
	const op = "dynamo.Conversations.Due"
	if limit <= 0 {
		return nil, fault.InvalidField(op, "limit", "must be positive")
	}
	// '~' sorts after the '#' that follows the time, so entries due exactly at t are included.
	upTo := t.UTC().Format(sortTime) + "~"
	type entry struct {
		sk string
		c  sla.Conversation
	}
	var due []entry
	for n := range dueShards {
		items, err := x.pager().queryUpTo(ctx, op, dynamodb.QueryInput{
			TableName:              &x.table,
			IndexName:              aws.String("GSI1"),
			KeyConditionExpression: aws.String("GSI1PK = :p AND GSI1SK <= :t"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":p": str(pfxDue + strconv.Itoa(n)), ":t": str(upTo),
			},
		}, nil, limit)
		if err != nil {
			return nil, err
		}
		for _, item := range items {
			var c sla.Conversation
			if err := unmarshalItem(item, &c); err != nil {
				return nil, fault.Wrap(fault.Internal, op, err)
			}
			due = append(due, entry{strAttr(item, "GSI1SK"), c})
		}
	}
	// Keys are <next>#<id> in fixed width: their order is Next's, then the id's.
	slices.SortFunc(due, func(a, b entry) int { return strings.Compare(a.sk, b.sk) })
	out := make([]sla.Conversation, 0, min(limit, len(due)))
	for _, e := range due[:min(limit, len(due))] {
		out = append(out, e.c)
	}
	return out, nil
}

// Opened reads the report rows of each month from from's to to's, consistently and in key order,
// which is the order of OpenedAt. Every key is <openedAt>#<id>, so BETWEEN <from> AND <to> is the
// half-open range: a row opened at exactly to sorts after <to>.
func (x *Conversations) Opened(ctx context.Context, queue string, from, to time.Time) ([]sla.Conversation, error) {
	const op = "dynamo.Conversations.Opened"
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, nil
	}
	first := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	if months := (to.Year()-first.Year())*12 + int(to.Month()-first.Month()); months > maxOpenedMonths {
		return nil, fault.InvalidField(op, "from", "the range covers %d months, at most %d", months, maxOpenedMonths)
	}
	var out []sla.Conversation
	for month := first; month.Before(to); month = month.AddDate(0, 1, 0) {
		items, err := x.pager().queryUpTo(ctx, op, dynamodb.QueryInput{
			TableName:              &x.table,
			KeyConditionExpression: aws.String("PK = :pk AND SK BETWEEN :from AND :to"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(openedPK(queue, month)), ":from": str(from.Format(sortTime)), ":to": str(to.Format(sortTime)),
			},
			ConsistentRead: aws.Bool(true),
		}, nil, 0)
		if err != nil {
			return nil, err
		}
		cs, err := decodeAll(op, items, unmarshalInto[sla.Conversation])
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Breached reads the queue's breach rows consistently, in order of id.
func (x *Conversations) Breached(ctx context.Context, queue string) ([]sla.Conversation, error) {
	const op = "dynamo.Conversations.Breached"
	items, err := x.pager().queryUpTo(ctx, op, dynamodb.QueryInput{
		TableName:                 &x.table,
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pfxBreached + queue)},
		ConsistentRead:            aws.Bool(true),
	}, nil, 0)
	if err != nil {
		return nil, err
	}
	return decodeAll(op, items, unmarshalInto[sla.Conversation])
}

// pager borrows the directory's query paging, as Destinations does.
func (x *Conversations) pager() *Directory { return &Directory{client: x.client} }

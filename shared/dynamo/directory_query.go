package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// defaultLimit is a page's size when the caller asks for none.
const defaultLimit = 100

func pageLimit(p directory.Page) int {
	if p.Limit <= 0 {
		return defaultLimit
	}
	return p.Limit
}

// --- Cursors ---

// cursor is what an opaque cursor holds: the query it continues (Query), the key of the last item
// of the page (Key; every key attribute in these tables is a string) and, for the audit log's
// day-by-day query, the day of that item.
type cursor struct {
	Query string            `json:"q"`
	Day   string            `json:"d,omitempty"`
	Key   map[string]string `json:"k,omitempty"`
}

func encodeCursor(op string, c cursor, after map[string]types.AttributeValue) (string, error) {
	if len(after) > 0 {
		c.Key = make(map[string]string, len(after))
		for k, v := range after {
			s, ok := v.(*types.AttributeValueMemberS)
			if !ok {
				return "", fault.New(fault.Internal, op, "key attribute %s is %T, not a string", k, v)
			}
			c.Key[k] = s.Value
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// keyShape says what the start key of a query looks like: its attributes, the partition attribute
// with the value every key of the query has and, for a query of a sort key range, the sort
// attribute and the range's bounds.
type keyShape struct {
	attrs     []string
	partition string
	value     string
	sort      string
	low, high string
}

var (
	tableKey = []string{"PK", "SK"}
	gsi1Key  = []string{"PK", "SK", "GSI1PK", "GSI1SK"}
	gsi2Key  = []string{"PK", "SK", "GSI2PK", "GSI2SK"}
	gsi3Key  = []string{"PK", "SK", "GSI3PK", "GSI3SK"}
)

// decodeCursor reads a cursor made by query tag. A cursor from another query, or one that was
// tampered with, is the caller's mistake: DynamoDB would otherwise answer it with a validation
// error, which reads as Mailroom's.
func decodeCursor(op, s, tag string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Query != tag {
		return cursor{}, fault.InvalidField(op, "cursor", "not a cursor of this listing")
	}
	return c, nil
}

// startKey checks a decoded cursor's key against the query's shape; nil when it has none. done
// says the key is past the low end of the query's range (read newest first): a range whose start
// moved on since the previous page, as "the last 7 days" does, has nothing after it. DynamoDB
// refuses a start key outside the range instead.
func startKey(op string, c cursor, shape keyShape) (k map[string]types.AttributeValue, done bool, err error) {
	if len(c.Key) == 0 {
		return nil, false, nil
	}
	bad := fault.InvalidField(op, "cursor", "not a cursor of this listing")
	if len(c.Key) != len(shape.attrs) || c.Key[shape.partition] != shape.value {
		return nil, false, bad
	}
	k = make(map[string]types.AttributeValue, len(c.Key))
	for _, a := range shape.attrs {
		v, ok := c.Key[a]
		if !ok {
			return nil, false, bad
		}
		k[a] = str(v)
	}
	if shape.sort != "" {
		switch v := c.Key[shape.sort]; {
		case v < shape.low:
			return nil, true, nil
		case v > shape.high:
			return nil, false, bad
		}
	}
	return k, false, nil
}

// --- Queries ---

// queryUpTo reads items from start (nil: the beginning) until it has limit of them or the key
// range ends. It goes on past DynamoDB's 1 MB pages, so it returns fewer only at the end. limit 0
// means every item.
func (d *Directory) queryUpTo(ctx context.Context, op string, in dynamodb.QueryInput, start map[string]types.AttributeValue, limit int) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	in.ExclusiveStartKey = start
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(limit - len(items)))
		}
		out, err := d.client.Query(ctx, &in)
		if err != nil {
			return nil, translate(op, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 || (limit > 0 && len(items) >= limit) {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// keyOf returns an item's key attributes as a start key, for a cursor that goes on after it.
func keyOf(item map[string]types.AttributeValue, attrs []string) map[string]types.AttributeValue {
	k := make(map[string]types.AttributeValue, len(attrs))
	for _, a := range attrs {
		k[a] = item[a]
	}
	return k
}

// page reads one page of a query that stays in one partition; tag names the query in its cursors.
// It reads one item more than the page holds, so that the last page never comes with a cursor to
// an empty one (DynamoDB's LastEvaluatedKey would give one whenever a page ends exactly at Limit).
func (d *Directory) page(ctx context.Context, op, tag string, in dynamodb.QueryInput, shape keyShape, p directory.Page) ([]map[string]types.AttributeValue, string, error) {
	var start map[string]types.AttributeValue
	if p.Cursor != "" {
		c, err := decodeCursor(op, p.Cursor, tag)
		if err != nil {
			return nil, "", err
		}
		var done bool
		if start, done, err = startKey(op, c, shape); err != nil || done {
			return nil, "", err
		}
	}
	limit := pageLimit(p)
	items, err := d.queryUpTo(ctx, op, in, start, limit+1)
	if err != nil || len(items) <= limit {
		return items, "", err
	}
	items = items[:limit]
	next, err := encodeCursor(op, cursor{Query: tag}, keyOf(items[limit-1], shape.attrs))
	return items, next, err
}

func decodeAll[T any](op string, items []map[string]types.AttributeValue, decode func(map[string]types.AttributeValue, *T) error) ([]T, error) {
	out := make([]T, len(items))
	for i, it := range items {
		if err := decode(it, &out[i]); err != nil {
			return nil, fault.Wrap(fault.Internal, op, err)
		}
	}
	return out, nil
}

func unmarshalInto[T any](item map[string]types.AttributeValue, v *T) error {
	return unmarshalItem(item, v)
}

// listing reads one page of a kind's listing from GSI3. A global index can only be read eventually
// consistently: a resource created a moment ago may be missing from a page for a moment.
func listing[T any](ctx context.Context, d *Directory, op, kind string, p directory.Page, decode func(map[string]types.AttributeValue, *T) error) ([]T, string, error) {
	pk := pfxList + kind
	items, next, err := d.page(ctx, op, "list:"+kind, dynamodb.QueryInput{
		TableName:                 &d.table,
		IndexName:                 aws.String("GSI3"),
		KeyConditionExpression:    aws.String("GSI3PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
	}, keyShape{attrs: gsi3Key, partition: "GSI3PK", value: pk}, p)
	if err != nil {
		return nil, "", err
	}
	out, err := decodeAll(op, items, decode)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func (d *Directory) Domains(ctx context.Context, p directory.Page) ([]directory.Domain, string, error) {
	return listing(ctx, d, "dynamo.Directory.Domains", directory.KindDomain, p, unmarshalInto[directory.Domain])
}

func (d *Directory) Mailboxes(ctx context.Context, p directory.Page) ([]directory.Mailbox, string, error) {
	return listing(ctx, d, "dynamo.Directory.Mailboxes", directory.KindMailbox, p, unmarshalInto[directory.Mailbox])
}

func (d *Directory) Aliases(ctx context.Context, p directory.Page) ([]directory.Alias, string, error) {
	return listing(ctx, d, "dynamo.Directory.Aliases", directory.KindAlias, p, unmarshalAlias)
}

func (d *Directory) Groups(ctx context.Context, p directory.Page) ([]directory.Group, string, error) {
	return listing(ctx, d, "dynamo.Directory.Groups", directory.KindGroup, p, unmarshalInto[directory.Group])
}

func (d *Directory) membersQuery(group, prefix string) dynamodb.QueryInput {
	return dynamodb.QueryInput{
		TableName:              &d.table,
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(pfxGroup + group), ":sk": str(prefix),
		},
		ConsistentRead: aws.Bool(true),
	}
}

// Members and AllMembers read the table consistently (twice the read cost, on small items): adding
// a member checks that it is not there yet, and an expansion must include one added a moment ago.
func (d *Directory) Members(ctx context.Context, group string, p directory.Page) ([]directory.Member, string, error) {
	const op = "dynamo.Directory.Members"
	items, next, err := d.page(ctx, op, "members:"+group, d.membersQuery(group, pfxMember),
		keyShape{attrs: tableKey, partition: "PK", value: pfxGroup + group}, p)
	if err != nil {
		return nil, "", err
	}
	out, err := decodeAll(op, items, unmarshalMember)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// AllMembers reads the group's member items in DynamoDB's 1 MB pages. A member item is about
// 170 bytes, so a request returns some 6,000 members: expanding a group tree costs about one
// request per group, plus one per further 6,000 members of a large group, never one per member.
func (d *Directory) AllMembers(ctx context.Context, group, kind string) ([]directory.Member, error) {
	const op = "dynamo.Directory.AllMembers"
	prefix := pfxMember
	if kind != "" {
		prefix += kind + ":"
	}
	items, err := d.queryUpTo(ctx, op, d.membersQuery(group, prefix), nil, 0)
	if err != nil {
		return nil, err
	}
	return decodeAll(op, items, unmarshalMember)
}

// Referrers reads GSI1, which is eventually consistent: the service must not rely on it alone to
// keep a reference from dangling when the referrer is being added at the same moment.
func (d *Directory) Referrers(ctx context.Context, ref string) ([]string, error) {
	const op = "dynamo.Directory.Referrers"
	items, err := d.queryUpTo(ctx, op, dynamodb.QueryInput{
		TableName:                 &d.table,
		IndexName:                 aws.String("GSI1"),
		KeyConditionExpression:    aws.String("GSI1PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pfxRef + ref)},
	}, nil, 0)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = strAttr(it, "GSI1SK")
	}
	return out, nil
}

// DomainInUse reads at most one address claim of the domain from GSI3 (eventually consistent).
func (d *Directory) DomainInUse(ctx context.Context, domain string) (bool, error) {
	const op = "dynamo.Directory.DomainInUse"
	out, err := d.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &d.table,
		IndexName:                 aws.String("GSI3"),
		KeyConditionExpression:    aws.String("GSI3PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pfxAddrDom + domain)},
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return false, translate(op, err)
	}
	return len(out.Items) > 0, nil
}

// OwnedGroups pages through the owner's entries in GSI2 (keys only, eventually consistent), then
// reads the groups themselves in batches, in the index's order. A group deleted between the two
// reads is left out.
func (d *Directory) OwnedGroups(ctx context.Context, owner string, p directory.Page) ([]directory.Group, string, error) {
	const op = "dynamo.Directory.OwnedGroups"
	pk := pfxOwner + owner
	items, next, err := d.page(ctx, op, "owned:"+owner, dynamodb.QueryInput{
		TableName:                 &d.table,
		IndexName:                 aws.String("GSI2"),
		KeyConditionExpression:    aws.String("GSI2PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
	}, keyShape{attrs: gsi2Key, partition: "GSI2PK", value: pk}, p)
	if err != nil {
		return nil, "", err
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = strAttr(it, "GSI2SK")
	}
	byID, err := d.batchGetGroups(ctx, op, ids)
	if err != nil {
		return nil, "", err
	}
	groups := make([]directory.Group, 0, len(ids))
	for _, id := range ids {
		if g, ok := byID[id]; ok {
			groups = append(groups, g)
		}
	}
	return groups, next, nil
}

// maxBatchGet is DynamoDB's limit on keys in one BatchGetItem call.
const maxBatchGet = 100

func (d *Directory) batchGetGroups(ctx context.Context, op string, ids []string) (map[string]directory.Group, error) {
	out := make(map[string]directory.Group, len(ids))
	for chunk := range slices.Chunk(ids, maxBatchGet) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, id := range chunk {
			keys[i] = key(pfxGroup+id, skMeta)
		}
		req := map[string]types.KeysAndAttributes{d.table: {Keys: keys}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == maxBatchAttempts {
				return nil, fault.New(fault.Transient, op, "groups still unread after %d attempts", attempt)
			}
			if attempt > 0 {
				// Unprocessed keys mean the table is throttling this read; back off before asking again.
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return nil, translate(op, err)
				}
			}
			res, err := d.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, translate(op, err)
			}
			for _, it := range res.Responses[d.table] {
				var g directory.Group
				if err := unmarshalItem(it, &g); err != nil {
					return nil, fault.Wrap(fault.Internal, op, err)
				}
				out[g.ID] = g
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

const maxBatchAttempts = 8

func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<(attempt-1), 2*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// --- Audit log ---

// Audit returns entries newest first. By resource or by actor it is one key range; otherwise it
// reads the day partitions of GSI2 from q.To's day back to q.From's, filling each page across
// days, so a page costs one request per day it touches (an empty day is still a request).
func (d *Directory) Audit(ctx context.Context, q directory.AuditQuery, p directory.Page) ([]directory.AuditEntry, string, error) {
	const op = "dynamo.Directory.Audit"
	if q.Actor != "" && q.Resource != "" {
		return nil, "", fault.InvalidField(op, "actor", "give an actor or a resource, not both")
	}
	if q.To.IsZero() {
		return nil, "", fault.InvalidField(op, "to", "missing")
	}
	if q.To.Before(q.From) {
		return nil, "", fault.InvalidField(op, "to", "before from")
	}
	// '~' sorts after the '#' and id that follow the time, so entries at q.To are included.
	from, to := q.From.UTC().Format(sortTime), q.To.UTC().Format(sortTime)+"~"
	values := map[string]types.AttributeValue{":from": str(from), ":to": str(to)}
	var (
		items []map[string]types.AttributeValue
		next  string
		err   error
	)
	switch {
	case q.Resource != "":
		pk := pfxRes + q.Resource
		values[":pk"] = str(pk)
		items, next, err = d.page(ctx, op, "audit:resource:"+q.Resource, dynamodb.QueryInput{
			TableName:                 &d.audit,
			KeyConditionExpression:    aws.String("PK = :pk AND SK BETWEEN :from AND :to"),
			ExpressionAttributeValues: values,
			ScanIndexForward:          aws.Bool(false),
		}, keyShape{tableKey, "PK", pk, "SK", from, to}, p)
	case q.Actor != "":
		pk := pfxActor + q.Actor
		values[":pk"] = str(pk)
		items, next, err = d.page(ctx, op, "audit:actor:"+q.Actor, dynamodb.QueryInput{
			TableName:                 &d.audit,
			IndexName:                 aws.String("GSI1"),
			KeyConditionExpression:    aws.String("GSI1PK = :pk AND GSI1SK BETWEEN :from AND :to"),
			ExpressionAttributeValues: values,
			ScanIndexForward:          aws.Bool(false),
		}, keyShape{gsi1Key, "GSI1PK", pk, "GSI1SK", from, to}, p)
	default:
		items, next, err = d.auditByDay(ctx, op, q, from, to, p)
	}
	if err != nil {
		return nil, "", err
	}
	out, err := decodeAll(op, items, unmarshalAudit)
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

const auditDayTag = "audit:day"

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// auditByDay's cursor names the day of the page's last entry and that entry's key. It does not
// name the range: a caller whose range is "the last 7 days" asks for the next page with a range
// that has moved on a little, and the cursor goes on where it was (see startKey). Like page, it
// reads one entry more than the page holds, across days if need be, so the last page has no
// cursor.
func (d *Directory) auditByDay(ctx context.Context, op string, q directory.AuditQuery, from, to string, p directory.Page) ([]map[string]types.AttributeValue, string, error) {
	if q.From.IsZero() {
		return nil, "", fault.InvalidField(op, "from", "missing")
	}
	first, day := utcDay(q.From), utcDay(q.To)
	var start map[string]types.AttributeValue
	if p.Cursor != "" {
		c, err := decodeCursor(op, p.Cursor, auditDayTag)
		if err != nil {
			return nil, "", err
		}
		cday, perr := time.Parse(time.DateOnly, c.Day)
		if perr != nil || cday.After(day) {
			return nil, "", fault.InvalidField(op, "cursor", "not a cursor of this listing")
		}
		if cday.Before(first) {
			return nil, "", nil
		}
		day = cday
		var done bool
		start, done, err = startKey(op, c, keyShape{gsi2Key, "GSI2PK", pfxDay + c.Day, "GSI2SK", from, to})
		if err != nil || done {
			return nil, "", err
		}
	}
	limit := pageLimit(p)
	var items []map[string]types.AttributeValue
	for {
		got, err := d.queryUpTo(ctx, op, dynamodb.QueryInput{
			TableName:              &d.audit,
			IndexName:              aws.String("GSI2"),
			KeyConditionExpression: aws.String("GSI2PK = :pk AND GSI2SK BETWEEN :from AND :to"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": str(pfxDay + day.Format(time.DateOnly)), ":from": str(from), ":to": str(to),
			},
			ScanIndexForward: aws.Bool(false),
		}, start, limit+1-len(items))
		if err != nil {
			return nil, "", err
		}
		items = append(items, got...)
		if len(items) > limit {
			items = items[:limit]
			last := items[limit-1]
			c := cursor{Query: auditDayTag, Day: strings.TrimPrefix(strAttr(last, "GSI2PK"), pfxDay)}
			next, err := encodeCursor(op, c, keyOf(last, gsi2Key))
			return items, next, err
		}
		if !day.After(first) {
			return items, "", nil
		}
		day, start = day.AddDate(0, 0, -1), nil
	}
}

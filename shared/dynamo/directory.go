package dynamo

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// Directory keeps the directory in the directory table and its audit log in the audit table.
// docs/data-model.md lists the items, their keys and the query each serves.
type Directory struct {
	client *dynamodb.Client
	table  string
	audit  string
	// Now is the clock that decides whether a remembered idempotent answer has expired.
	Now func() time.Time
}

var (
	_ directory.Store    = (*Directory)(nil)
	_ directory.AuditLog = (*Directory)(nil)
)

// NewDirectory returns a directory over the named tables.
func NewDirectory(client *dynamodb.Client, table, auditTable string) *Directory {
	return &Directory{client: client, table: table, audit: auditTable, Now: time.Now}
}

// Key prefixes; docs/data-model.md explains each.
const (
	pfxDomain  = "DOM#"
	pfxMailbox = "MBX#"
	pfxAlias   = "ALS#"
	pfxGroup   = "GRP#"
	pfxMember  = "MEM#"
	pfxOwn     = "OWN#"
	pfxOwner   = "OWNER#"
	pfxRef     = "REF#"
	pfxAddr    = "ADDR#"
	pfxAddrDom = "ADDRDOM#"
	pfxList    = "LIST#"
	pfxIdem    = "IDEM#"
	pfxRes     = "RES#"
	pfxActor   = "ACTOR#"
	pfxDay     = "DAY#"
	skMeta     = "META"
)

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": str(pk), "SK": str(sk)}
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func strAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func numAttr(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

func strList(ss []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		l[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func strListAttr(item map[string]types.AttributeValue, name string) []string {
	l, ok := item[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out = append(out, s.Value)
		}
	}
	return out
}

// --- Items ---

// listed marshals a resource with its table key and its listing key in GSI3, which keeps each
// kind's listing in one partition ordered by name.
func listed(v any, pk, kind, name string) (map[string]types.AttributeValue, error) {
	item, err := marshalItem(v)
	if err != nil {
		return nil, err
	}
	item["PK"], item["SK"] = str(pk), str(skMeta)
	item["GSI3PK"], item["GSI3SK"] = str(pfxList+kind), str(name)
	return item, nil
}

func domainItem(d directory.Domain) (map[string]types.AttributeValue, error) {
	return listed(d, pfxDomain+d.Name, directory.KindDomain, d.Name)
}

func mailboxItem(m directory.Mailbox) (map[string]types.AttributeValue, error) {
	return listed(m, pfxMailbox+m.Address, directory.KindMailbox, m.Address)
}

func groupItem(g directory.Group) (map[string]types.AttributeValue, error) {
	return listed(g, pfxGroup+g.ID, directory.KindGroup, g.ID)
}

// An alias is indexed under its target in GSI1, next to memberships, so that one query finds
// everything that would dangle if the target went away.
func aliasItem(a directory.Alias) (map[string]types.AttributeValue, error) {
	if a.TargetKind == "" || a.TargetID == "" {
		return nil, fault.New(fault.Internal, "dynamo.aliasItem", "alias %q has no target kind or id", a.Address)
	}
	item, err := listed(a, pfxAlias+a.Address, directory.KindAlias, a.Address)
	if err != nil {
		return nil, err
	}
	item["targetId"] = str(a.TargetID)
	item["GSI1PK"] = str(pfxRef + a.TargetKind + ":" + a.TargetID)
	item["GSI1SK"] = str(directory.KindAlias + ":" + a.Address)
	return item, nil
}

func unmarshalAlias(item map[string]types.AttributeValue, a *directory.Alias) error {
	if err := unmarshalItem(item, a); err != nil {
		return err
	}
	a.TargetID = strAttr(item, "targetId")
	return nil
}

// Members sort by their ref under the group, so a kind's members are one key range, and are
// indexed by ref in GSI1 so that the groups something belongs to are one query.
func memberItem(group string, m directory.Member) (map[string]types.AttributeValue, error) {
	item, err := marshalItem(m)
	if err != nil {
		return nil, err
	}
	if len(m.ForwardTo) > 0 {
		item["forwardTo"] = strList(m.ForwardTo)
	}
	ref := m.Ref()
	item["PK"], item["SK"] = str(pfxGroup+group), str(pfxMember+ref)
	item["GSI1PK"], item["GSI1SK"] = str(pfxRef+ref), str(directory.KindGroup+":"+group)
	return item, nil
}

func unmarshalMember(item map[string]types.AttributeValue, m *directory.Member) error {
	if err := unmarshalItem(item, m); err != nil {
		return err
	}
	m.ForwardTo = strListAttr(item, "forwardTo")
	return nil
}

func ownerItem(group, owner string) map[string]types.AttributeValue {
	item := key(pfxGroup+group, pfxOwn+owner)
	item["group"], item["owner"] = str(group), str(owner)
	item["GSI2PK"], item["GSI2SK"] = str(pfxOwner+owner), str(group)
	return item
}

// A claim is indexed by the address's domain in GSI3 so that "is this domain in use" reads at
// most one item.
func claimItem(address string, o directory.Owner) map[string]types.AttributeValue {
	item := key(pfxAddr+address, "ADDR")
	item["address"], item["ownerKind"], item["ownerId"] = str(address), str(o.Kind), str(o.ID)
	item["GSI3PK"], item["GSI3SK"] = str(pfxAddrDom+directory.DomainOf(address)), str(address)
	return item
}

var graphKey = key("GRAPH", "GRAPH")

func replayKey(k string) map[string]types.AttributeValue { return key(pfxIdem+k, "IDEM") }

// expiresAt is the replay's TTL attribute, rounded up so that DynamoDB never deletes a key before
// it expires. The same number decides expiry on reads and in Remember's condition, so a key that
// reads as gone can always be used again.
func expiresAt(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

func replayItem(r directory.Replay) (map[string]types.AttributeValue, error) {
	item, err := marshalItem(r)
	if err != nil {
		return nil, err
	}
	for k, v := range replayKey(r.Key) {
		item[k] = v
	}
	item["expiresAt"] = num(expiresAt(r.Expires))
	return item, nil
}

// auditSK sorts entries by time, the id breaking ties between entries of the same instant.
func auditSK(e directory.AuditEntry) string { return e.At.UTC().Format(sortTime) + "#" + e.ID }

// Before and after are stored as JSON text rather than as maps: they are whatever the resource
// looked like at the time, and the log must give them back byte for byte.
func auditItem(e directory.AuditEntry) (map[string]types.AttributeValue, error) {
	before, after := e.Before, e.After
	e.Before, e.After = nil, nil
	item, err := marshalItem(e)
	if err != nil {
		return nil, err
	}
	if len(before) > 0 {
		item["before"] = str(string(before))
	}
	if len(after) > 0 {
		item["after"] = str(string(after))
	}
	sk := auditSK(e)
	item["PK"], item["SK"] = str(pfxRes+e.Resource), str(sk)
	item["GSI1PK"], item["GSI1SK"] = str(pfxActor+e.Actor.Subject), str(sk)
	item["GSI2PK"], item["GSI2SK"] = str(pfxDay+e.At.UTC().Format(time.DateOnly)), str(sk)
	return item, nil
}

func unmarshalAudit(item map[string]types.AttributeValue, e *directory.AuditEntry) error {
	raw := map[string]types.AttributeValue{}
	for k, v := range item {
		if k != "before" && k != "after" {
			raw[k] = v
		}
	}
	if err := unmarshalItem(raw, e); err != nil {
		return err
	}
	if s := strAttr(item, "before"); s != "" {
		e.Before = []byte(s)
	}
	if s := strAttr(item, "after"); s != "" {
		e.After = []byte(s)
	}
	return nil
}

// --- Single-item reads. All are consistent: the service reads a version and writes on condition
// of it, and a stale read would only turn into a needless conflict. ---

func (d *Directory) getItem(ctx context.Context, op string, k map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &d.table,
		Key:            k,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, translate(op, err)
	}
	return out.Item, nil
}

// get reads one item into v, or fails with NotFound naming what was asked for.
func (d *Directory) get(ctx context.Context, op string, k map[string]types.AttributeValue, v any, what, id string) error {
	item, err := d.getItem(ctx, op, k)
	if err != nil {
		return err
	}
	if item == nil {
		return fault.New(fault.NotFound, op, "no %s %q", what, id)
	}
	if err := unmarshalItem(item, v); err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	return nil
}

func (d *Directory) Domain(ctx context.Context, name string) (directory.Domain, error) {
	var v directory.Domain
	err := d.get(ctx, "dynamo.Directory.Domain", key(pfxDomain+name, skMeta), &v, "domain", name)
	return v, err
}

func (d *Directory) Mailbox(ctx context.Context, address string) (directory.Mailbox, error) {
	var v directory.Mailbox
	err := d.get(ctx, "dynamo.Directory.Mailbox", key(pfxMailbox+address, skMeta), &v, "mailbox", address)
	return v, err
}

func (d *Directory) Alias(ctx context.Context, address string) (directory.Alias, error) {
	const op = "dynamo.Directory.Alias"
	item, err := d.getItem(ctx, op, key(pfxAlias+address, skMeta))
	if err != nil {
		return directory.Alias{}, err
	}
	if item == nil {
		return directory.Alias{}, fault.New(fault.NotFound, op, "no alias %q", address)
	}
	var v directory.Alias
	if err := unmarshalAlias(item, &v); err != nil {
		return directory.Alias{}, fault.Wrap(fault.Internal, op, err)
	}
	return v, nil
}

func (d *Directory) Group(ctx context.Context, id string) (directory.Group, error) {
	var v directory.Group
	err := d.get(ctx, "dynamo.Directory.Group", key(pfxGroup+id, skMeta), &v, "group", id)
	return v, err
}

func (d *Directory) Member(ctx context.Context, group, ref string) (directory.Member, error) {
	const op = "dynamo.Directory.Member"
	item, err := d.getItem(ctx, op, key(pfxGroup+group, pfxMember+ref))
	if err != nil {
		return directory.Member{}, err
	}
	if item == nil {
		return directory.Member{}, fault.New(fault.NotFound, op, "group %q has no member %q", group, ref)
	}
	var v directory.Member
	if err := unmarshalMember(item, &v); err != nil {
		return directory.Member{}, fault.Wrap(fault.Internal, op, err)
	}
	return v, nil
}

func (d *Directory) AddressOwner(ctx context.Context, address string) (directory.Owner, error) {
	const op = "dynamo.Directory.AddressOwner"
	item, err := d.getItem(ctx, op, key(pfxAddr+address, "ADDR"))
	if err != nil {
		return directory.Owner{}, err
	}
	if item == nil {
		return directory.Owner{}, fault.New(fault.NotFound, op, "no one owns %q", address)
	}
	return directory.Owner{Kind: strAttr(item, "ownerKind"), ID: strAttr(item, "ownerId")}, nil
}

// GraphVersion reads 0 until the first change to group-in-group membership creates the item.
func (d *Directory) GraphVersion(ctx context.Context) (int64, error) {
	const op = "dynamo.Directory.GraphVersion"
	item, err := d.getItem(ctx, op, graphKey)
	if err != nil || item == nil {
		return 0, err
	}
	v, ok := numAttr(item, "version")
	if !ok {
		return 0, fault.New(fault.Internal, op, "graph item has no numeric version")
	}
	return v, nil
}

// Replay treats an expired answer as absent: DynamoDB deletes expired items only eventually,
// often days later.
func (d *Directory) Replay(ctx context.Context, k string) (directory.Replay, error) {
	const op = "dynamo.Directory.Replay"
	item, err := d.getItem(ctx, op, replayKey(k))
	if err != nil {
		return directory.Replay{}, err
	}
	if exp, _ := numAttr(item, "expiresAt"); item == nil || exp < d.Now().Unix() {
		return directory.Replay{}, fault.New(fault.NotFound, op, "no remembered answer for key %q", k)
	}
	var v directory.Replay
	if err := unmarshalItem(item, &v); err != nil {
		return directory.Replay{}, fault.Wrap(fault.Internal, op, err)
	}
	return v, nil
}

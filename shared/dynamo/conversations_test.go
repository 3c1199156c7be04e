package dynamo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/sla"
)

var convT0 = time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.UTC)

type convFixture struct {
	ctx    context.Context
	client *dynamodb.Client
	table  string
	store  *dynamo.Conversations
}

// newConversations returns a store over a fresh state table made from template.yaml, its clock
// at convT0.
func newConversations(t *testing.T) convFixture {
	t.Helper()
	client := devstacktest.Clients(t).DynamoDB
	table := devstacktest.Table(t, "StateTable")
	store := dynamo.NewConversations(client, table)
	store.Now = func() time.Time { return convT0 }
	return convFixture{ctx: context.Background(), client: client, table: table, store: store}
}

// convWaiting is a new conversation whose first-response clock started when it opened: warning
// after three hours, deadline after four.
func convWaiting(id, queue string, opened time.Time) sla.Conversation {
	return sla.Conversation{
		ID: id, Queue: queue, Policy: "standard", Customer: "kim@client.example", Subject: "Order 1234 arrived broken",
		OpenedAt: opened, State: sla.Waiting, Target: sla.TargetFirst, Since: opened,
		WarnAt: opened.Add(3 * time.Hour), Due: opened.Add(4 * time.Hour),
		LastMessageID: "m-" + strings.ToLower(id) + "@client.example", LastMessageAt: opened, Language: "en", Version: 1,
	}
}

// convNext is c as its next write makes it: the version one on.
func convNext(c sla.Conversation, change func(*sla.Conversation)) sla.Conversation {
	change(&c)
	c.Version++
	return c
}

func (f convFixture) put(t *testing.T, c sla.Conversation, messageIDs ...string) {
	t.Helper()
	if err := f.store.Put(f.ctx, c, c.Version-1, messageIDs); err != nil {
		t.Fatalf("Put(%s v%d): %v", c.ID, c.Version, err)
	}
}

func (f convFixture) get(t *testing.T, id string) sla.Conversation {
	t.Helper()
	c, err := f.store.Conversation(f.ctx, id)
	if err != nil {
		t.Fatalf("Conversation(%s): %v", id, err)
	}
	return c
}

func (f convFixture) raw(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.client.GetItem(f.ctx, &dynamodb.GetItemInput{
		TableName: &f.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func convIDs(cs []sla.Conversation) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// Every field comes back as it was written: times to the nanosecond, durations, flags.
func TestConversationRoundTrip(t *testing.T) {
	f := newConversations(t)
	full := sla.Conversation{
		ID: "C7K2QX9PA", Queue: "group:support", Policy: "gold", Customer: "kim@client.example",
		Subject: "Réclamation — commande 1234", OpenedAt: convT0, State: sla.Waiting, Target: sla.TargetNext,
		Since: convT0.Add(26 * time.Hour), Used: 90*time.Minute + 7*time.Nanosecond,
		WarnAt: convT0.Add(27 * time.Hour), Due: convT0.Add(28*time.Hour + time.Nanosecond),
		Warned: true, Breached: true, HoldingSent: true,
		FirstResponseAt: convT0.Add(2 * time.Hour), FirstResponse: 75 * time.Minute, WithinTarget: true,
		Responses: 3, Breaches: 2, LastMessageID: "cafe.1234@client.example",
		LastMessageAt: convT0.Add(26 * time.Hour), Language: "fr", Version: 1,
	}
	sparse := sla.Conversation{ID: "CSPARSE01", Queue: "mailbox:ana@example.com", OpenedAt: convT0, State: sla.Answered, Version: 1}
	for _, want := range []sla.Conversation{full, sparse} {
		f.put(t, want)
		if got := f.get(t, want.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("Conversation(%s)\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
	if _, err := f.store.Conversation(f.ctx, "CNOTTHERE"); !fault.Is(err, fault.NotFound) {
		t.Errorf("Conversation of an unknown id: %v, want NotFound", err)
	}
}

func TestConversationPutConflicts(t *testing.T) {
	f := newConversations(t)
	c := convWaiting("C1", "group:support", convT0)
	f.put(t, c)
	if err := f.store.Put(f.ctx, c, 0, nil); !fault.Is(err, fault.Conflict) {
		t.Errorf("creating it twice: %v, want Conflict", err)
	}
	answered := convNext(c, func(c *sla.Conversation) { c.State, c.Responses = sla.Answered, 1 })
	f.put(t, answered)
	// A writer that read version 1 too is too late.
	late := convNext(c, func(c *sla.Conversation) { c.Warned = true })
	if err := f.store.Put(f.ctx, late, 1, nil); !fault.Is(err, fault.Conflict) {
		t.Errorf("a stale version: %v, want Conflict", err)
	}
	if got := f.get(t, "C1"); !reflect.DeepEqual(got, answered) {
		t.Errorf("after the stale write: %+v, want %+v", got, answered)
	}
	if err := f.store.Put(f.ctx, convNext(convWaiting("C2", "group:support", convT0), func(*sla.Conversation) {}), 1, nil); !fault.Is(err, fault.Conflict) {
		t.Errorf("updating a conversation that does not exist: %v, want Conflict", err)
	}

	for _, tc := range []struct {
		name   string
		c      sla.Conversation
		expect int64
		ids    int
	}{
		{"no id", sla.Conversation{Queue: "group:support", OpenedAt: convT0, Version: 1}, 0, 0},
		{"no queue", sla.Conversation{ID: "C3", OpenedAt: convT0, Version: 1}, 0, 0},
		{"not opened", sla.Conversation{ID: "C3", Queue: "group:support", Version: 1}, 0, 0},
		{"version not moved on", answered, answered.Version, 0},
	} {
		if err := f.store.Put(f.ctx, tc.c, tc.expect, nil); !fault.Is(err, fault.Invalid) {
			t.Errorf("%s: %v, want Invalid", tc.name, err)
		}
	}
}

func TestConversationThreads(t *testing.T) {
	f := newConversations(t)
	// A message to two queues is in two conversations; a reply names it.
	a, b := convWaiting("CA", "group:support", convT0), convWaiting("CB", "group:sales", convT0)
	f.put(t, a, "m1@client.example", "shared@client.example")
	f.put(t, b, "shared@client.example", "m3@client.example", "m3@client.example")
	// Threading the same id again changes nothing.
	f.put(t, convNext(a, func(c *sla.Conversation) { c.Warned = true }), "shared@client.example")

	got, err := f.store.Threads(f.ctx, []string{"m1@client.example", "shared@client.example", "m3@client.example", "unknown@client.example", "m1@client.example"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"m1@client.example":     {"CA"},
		"shared@client.example": {"CA", "CB"},
		"m3@client.example":     {"CB"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Threads = %v, want %v", got, want)
	}
	if got, err := f.store.Threads(f.ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Threads(nil) = %v, %v", got, err)
	}

	// The thread lives 400 days from the last message that named it.
	item := f.raw(t, "THREAD#shared@client.example", "THREAD")
	if n, ok := item["expiresAt"].(*types.AttributeValueMemberN); !ok || n.Value != strconv.FormatInt(convT0.Add(400*24*time.Hour).Unix()+1, 10) {
		t.Errorf("expiresAt = %v, want 400 days on (rounded up)", item["expiresAt"])
	}
}

// A message forwarded in many batches has one SES id per batch: more than one transaction holds.
// Every id is threaded, and read back past BatchGetItem's hundred keys.
func TestConversationThreadsMany(t *testing.T) {
	f := newConversations(t)
	var many []string
	for i := range 250 {
		many = append(many, fmt.Sprintf("0100019a%08d-ses", i))
	}
	f.put(t, convWaiting("CBIG", "group:all", convT0), many...)
	got, err := f.store.Threads(f.ctx, many)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(many) {
		t.Fatalf("Threads found %d of %d ids", len(got), len(many))
	}
	for _, id := range many {
		if !slices.Equal(got[id], []string{"CBIG"}) {
			t.Errorf("Threads[%s] = %v", id, got[id])
		}
	}
}

// Message-IDs too long for a key are keyed by their hash, on write and on read alike.
func TestConversationLongMessageIDs(t *testing.T) {
	f := newConversations(t)
	long := strings.Repeat("x", 3000) + "@client.example"
	edge := strings.Repeat("y", 893) // THREAD# and it: 900 bytes, kept as it is
	over := strings.Repeat("z", 894) // 901 bytes: hashed
	f.put(t, convWaiting("CL", "group:support", convT0), long, edge, over)
	got, err := f.store.Threads(f.ctx, []string{long, edge, over})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{long, edge, over} {
		if !slices.Equal(got[id], []string{"CL"}) {
			t.Errorf("Threads of a %d-byte id = %v", len(id), got[id])
		}
	}
	sum := sha256.Sum256([]byte(long))
	item := f.raw(t, "THREADH#"+hex.EncodeToString(sum[:]), "THREAD")
	if m, _ := item["messageId"].(*types.AttributeValueMemberS); m == nil || m.Value != long {
		t.Errorf("the hashed thread item does not keep its Message-ID: %v", item["messageId"])
	}
	if f.raw(t, "THREAD#"+edge, "THREAD") == nil {
		t.Errorf("a 900-byte key was hashed")
	}
}

// Due reads every shard and returns the due conversations, earliest first, up to the limit.
func TestConversationDue(t *testing.T) {
	f := newConversations(t)
	now := convT0
	var due []string
	shards := map[string]bool{}
	for i := range 24 {
		id := fmt.Sprintf("CDUE%02d", i)
		// The first twelve are due, from 2h45m ago to exactly now; the other twelve six hours
		// later. Every fifth is paused: no clock, never due.
		c := convWaiting(id, "group:support", now.Add(-3*time.Hour).Add(-time.Duration(i%12)*15*time.Minute).Add(time.Duration(i/12)*6*time.Hour))
		if i%5 == 4 {
			c.State, c.WarnAt, c.Due, c.Since = sla.Paused, time.Time{}, time.Time{}, time.Time{}
		}
		f.put(t, c)
		if n := c.Next(); !n.IsZero() && !n.After(now) {
			due = append(due, id)
		}
		if it := f.raw(t, "CONV#"+id, "CONV"); it["GSI1PK"] != nil {
			shards[it["GSI1PK"].(*types.AttributeValueMemberS).Value] = true
		}
	}
	if len(shards) != 4 {
		t.Errorf("24 conversations in the due shards %v, want all 4", shards)
	}
	// A warned conversation is due at its deadline, the earliest of all.
	warned := convNext(convWaiting("CWARNED", "group:support", now.Add(-10*time.Hour)), func(c *sla.Conversation) { c.Warned = true })
	f.put(t, convWaiting("CWARNED", "group:support", warned.OpenedAt))
	f.put(t, warned)
	due = append(due, "CWARNED")

	got, err := f.store.Due(f.ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Next().Before(got[i-1].Next()) {
			t.Errorf("Due out of order: %s (%s) after %s (%s)", got[i].ID, got[i].Next(), got[i-1].ID, got[i-1].Next())
		}
	}
	if g, w := slices.Sorted(slices.Values(convIDs(got))), slices.Sorted(slices.Values(due)); !slices.Equal(g, w) {
		t.Errorf("Due = %v, want %v", g, w)
	}
	if len(got) == 0 || got[0].ID != "CWARNED" || !reflect.DeepEqual(got[0], warned) {
		t.Errorf("first due = %+v, want %+v", got[0], warned)
	}

	top, err := f.store.Due(f.ctx, now, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(convIDs(top), convIDs(got[:3])) {
		t.Errorf("Due(limit 3) = %v, want %v", convIDs(top), convIDs(got[:3]))
	}
	if _, err := f.store.Due(f.ctx, now, 0); !fault.Is(err, fault.Invalid) {
		t.Errorf("Due(limit 0): %v, want Invalid", err)
	}
}

// An answer stops the clock: the conversation leaves the due index, and comes back when the
// customer writes again.
func TestConversationAnsweredLeavesDue(t *testing.T) {
	f := newConversations(t)
	c := convWaiting("CANS", "group:support", convT0.Add(-5*time.Hour))
	f.put(t, c)
	dueIDs := func() []string {
		t.Helper()
		got, err := f.store.Due(f.ctx, convT0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return convIDs(got)
	}
	if got := dueIDs(); !slices.Equal(got, []string{"CANS"}) {
		t.Fatalf("waiting: Due = %v", got)
	}
	c = convNext(c, func(c *sla.Conversation) {
		c.State, c.Since, c.WarnAt, c.Due, c.Responses = sla.Answered, time.Time{}, time.Time{}, time.Time{}, 1
		c.FirstResponseAt, c.FirstResponse = convT0.Add(-time.Hour), 4*time.Hour
	})
	f.put(t, c)
	if got := dueIDs(); len(got) != 0 {
		t.Errorf("answered: Due = %v", got)
	}
	if it := f.raw(t, "CONV#CANS", "CONV"); it["GSI1PK"] != nil || it["GSI1SK"] != nil {
		t.Errorf("answered conversation still has index keys %v %v", it["GSI1PK"], it["GSI1SK"])
	}
	c = convNext(c, func(c *sla.Conversation) {
		c.State, c.Target, c.Since = sla.Waiting, sla.TargetNext, convT0.Add(-time.Hour)
		c.WarnAt, c.Due = convT0.Add(-time.Minute), convT0.Add(time.Hour)
	})
	f.put(t, c)
	if got := dueIDs(); !slices.Equal(got, []string{"CANS"}) {
		t.Errorf("the customer wrote again: Due = %v", got)
	}
}

func TestConversationBreachRows(t *testing.T) {
	f := newConversations(t)
	breached := func(queue string) []sla.Conversation {
		t.Helper()
		got, err := f.store.Breached(f.ctx, queue)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	a, b := convWaiting("CBR1", "group:support", convT0), convWaiting("CBR2", "group:support", convT0)
	f.put(t, a)
	f.put(t, b)
	if got := breached("group:support"); len(got) != 0 {
		t.Fatalf("before any deadline: %v", convIDs(got))
	}
	a = convNext(a, func(c *sla.Conversation) { c.Warned, c.Breached, c.Breaches = true, true, 1 })
	b = convNext(b, func(c *sla.Conversation) { c.Warned, c.Breached, c.Breaches = true, true, 1 })
	f.put(t, a)
	f.put(t, b)
	if got := breached("group:support"); !reflect.DeepEqual(got, []sla.Conversation{a, b}) {
		t.Errorf("past the deadline: %v, want CBR1, CBR2 as written", convIDs(got))
	}
	if got := breached("group:sales"); len(got) != 0 {
		t.Errorf("another queue: %v", convIDs(got))
	}
	// The row follows the conversation while it stays breached, and goes when it stops waiting.
	a = convNext(a, func(c *sla.Conversation) { c.HoldingSent = true })
	f.put(t, a)
	b = convNext(b, func(c *sla.Conversation) { c.State = sla.Paused })
	f.put(t, b)
	if got := breached("group:support"); !reflect.DeepEqual(got, []sla.Conversation{a}) {
		t.Errorf("one paused: %v, want CBR1 as written", got)
	}
	a = convNext(a, func(c *sla.Conversation) { c.State, c.Responses = sla.Answered, 1 })
	f.put(t, a)
	if got := breached("group:support"); len(got) != 0 {
		t.Errorf("answered: %v", convIDs(got))
	}
}

// Opened reads exactly [from, to) across months, in order, and sees later changes.
func TestConversationOpened(t *testing.T) {
	f := newConversations(t)
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	opened := map[string]string{
		"CJAN15": "2026-01-15T10:00:00Z",
		"CJAN20": "2026-01-20T00:00:00Z", // exactly from
		"CJAN31": "2026-01-31T23:59:59.999999999Z",
		"CFEB01": "2026-02-01T00:00:00Z",
		"CFEB15": "2026-02-15T08:00:00+02:00", // stored by its UTC month
		"CMAR01": "2026-03-01T00:00:00Z",
		"CMAR02": "2026-03-02T00:00:00Z", // exactly to
		"CMAR03": "2026-03-03T00:00:00Z",
	}
	for id, s := range opened {
		f.put(t, convWaiting(id, "group:support", at(s)))
		f.put(t, convWaiting(id+"X", "group:sales", at(s)))
	}
	from, to := at("2026-01-20T00:00:00Z"), at("2026-03-02T00:00:00Z")
	report := func() []sla.Conversation {
		t.Helper()
		got, err := f.store.Opened(f.ctx, "group:support", from, to)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := convIDs(report()), []string{"CJAN20", "CJAN31", "CFEB01", "CFEB15", "CMAR01"}; !slices.Equal(got, want) {
		t.Errorf("Opened = %v, want %v", got, want)
	}

	c := f.get(t, "CFEB01")
	c = convNext(c, func(c *sla.Conversation) {
		c.State, c.Responses = sla.Answered, 1
		c.FirstResponseAt, c.FirstResponse, c.WithinTarget = c.OpenedAt.Add(2*time.Hour), 2*time.Hour, true
	})
	f.put(t, c)
	got := report()
	if i := slices.Index(convIDs(got), "CFEB01"); i < 0 || !reflect.DeepEqual(got[i], c) {
		t.Errorf("after the first response the report reads %+v, want %+v", got, c)
	}

	if got, err := f.store.Opened(f.ctx, "group:support", to, from); err != nil || len(got) != 0 {
		t.Errorf("an empty range: %v, %v", convIDs(got), err)
	}
	if _, err := f.store.Opened(f.ctx, "group:support", time.Time{}, to); !fault.Is(err, fault.Invalid) {
		t.Errorf("from the year 1: %v, want Invalid", err)
	}
}

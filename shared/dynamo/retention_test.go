package dynamo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/retention"
)

func retRecord(id string, at time.Time) archive.Record {
	return archive.Record{
		ID: id, Source: "ses", Key: "archive/" + at.Format("2006/01/02/") + id + ".eml", RawKey: "inbound/" + id,
		ReceivedAt: at, ArchivedAt: at, Recipients: []string{"Sales@Example.com", "ops@example.com"},
		From: []mail.Address{{Address: "kim@client.example"}}, Subject: "Order " + id, Size: 100, SHA256: "ab" + id,
		Groups: []string{"sales"}, Labels: []string{"Invoices"},
	}
}

// TestRetentionArchiveCandidates reads the day index within a window and a page at a time, and
// deletes records with every listing.
func TestRetentionArchiveCandidates(t *testing.T) {
	ctx := context.Background()
	clients := devstacktest.Clients(t)
	table := devstacktest.Table(t, "ArchiveTable")
	idx := dynamo.NewArchiveIndex(clients.DynamoDB, table)
	ra := dynamo.NewRetentionArchive(clients.DynamoDB, table)
	day := time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		if err := idx.Put(ctx, retRecord(fmt.Sprintf("m%d", i), day.Add(time.Duration(i)*4*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	// The day before and after, which a window on the day never sees.
	for _, r := range []archive.Record{retRecord("before", day.Add(-time.Nanosecond)), retRecord("after", day.Add(retention.Day))} {
		if err := idx.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(q retention.CandidateQuery) (ids []string, pages int) {
		t.Helper()
		for {
			page, more, err := ra.Candidates(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, c := range page {
				ids = append(ids, c.ID)
				if !c.ReceivedAt.Equal(day.Add(time.Duration(c.ID[1]-'0') * 4 * time.Hour)) {
					t.Errorf("%s received %s", c.ID, c.ReceivedAt)
				}
			}
			if !more {
				return ids, pages
			}
			q.From = page[len(page)-1].Position
		}
	}
	tests := []struct {
		name  string
		q     retention.CandidateQuery
		want  []string
		pages int
	}{
		{"the whole day", retention.CandidateQuery{Day: day, Until: day.Add(48 * time.Hour), Limit: 100}, []string{"m0", "m1", "m2", "m3", "m4", "m5"}, 1},
		{"pages of 4", retention.CandidateQuery{Day: day, Until: day.Add(48 * time.Hour), Limit: 4}, []string{"m0", "m1", "m2", "m3", "m4", "m5"}, 2},
		{"after is exclusive, until inclusive", retention.CandidateQuery{Day: day, After: day.Add(4 * time.Hour), Until: day.Add(12 * time.Hour), Limit: 100}, []string{"m2", "m3"}, 1},
		{"after on an earlier day", retention.CandidateQuery{Day: day, After: day.Add(-time.Hour), Until: day.Add(5 * time.Hour), Limit: 100}, []string{"m0", "m1"}, 1},
		{"until before the day", retention.CandidateQuery{Day: day, Until: day.Add(-time.Hour), Limit: 100}, nil, 1},
		{"from a position", retention.CandidateQuery{Day: day, Until: day.Add(48 * time.Hour), From: day.Add(12*time.Hour).Format("2006-01-02T15:04:05.000000000Z") + "#m3", Limit: 100}, []string{"m4", "m5"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := walk(tt.q)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || pages != tt.pages {
				t.Errorf("ids %v in %d pages, want %v in %d", got, pages, tt.want, tt.pages)
			}
		})
	}

	recs, err := ra.Records(ctx, []string{"m1", "m2", "absent", "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs["m1"].SHA256 != "abm1" || !slices.Equal(recs["m2"].Groups, []string{"sales"}) {
		t.Fatalf("records %+v", recs)
	}
	if err := ra.Delete(ctx, []archive.Record{recs["m1"], recs["m2"]}); err != nil {
		t.Fatal(err)
	}
	// Again: deleting what is gone is no error.
	if err := ra.Delete(ctx, []archive.Record{recs["m1"]}); err != nil {
		t.Fatal(err)
	}
	if got, _ := walk(retention.CandidateQuery{Day: day, Until: day.Add(48 * time.Hour), Limit: 100}); fmt.Sprint(got) != "[m0 m3 m4 m5]" {
		t.Errorf("after deleting m1 and m2 the day lists %v", got)
	}
	for _, pk := range []string{"BOX#sales@example.com", "BOX#ops@example.com", "GRP#sales", "LBL#invoices"} {
		out, err := clients.DynamoDB.Query(ctx, &dynamodb.QueryInput{
			TableName: &table, KeyConditionExpression: aws.String("PK = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range out.Items {
			ids = append(ids, it["id"].(*types.AttributeValueMemberS).Value)
		}
		if want := "[before m0 m3 m4 m5 after]"; fmt.Sprint(ids) != want {
			t.Errorf("%s lists %v, want %s", pk, ids, want)
		}
	}
	if _, err := idx.Get(ctx, "m1"); !fault.Is(err, fault.NotFound) {
		t.Errorf("m1's record: %v, want NotFound", err)
	}
}

type retFixture struct {
	state *dynamo.RetentionState
	dir   *directory.Service
	admin directory.Call
}

func newRetFixture(t *testing.T) retFixture {
	t.Helper()
	clients := devstacktest.Clients(t)
	dirTable, audit, stateTable := devstacktest.Table(t, "DirectoryTable"), devstacktest.Table(t, "AuditTable"), devstacktest.Table(t, "StateTable")
	store := dynamo.NewDirectory(clients.DynamoDB, dirTable, audit)
	return retFixture{
		state: dynamo.NewRetentionState(clients.DynamoDB, stateTable, dirTable),
		dir:   &directory.Service{Store: store, Audit: store, Now: time.Now},
		admin: directory.Call{Principal: directory.Principal{Subject: "test", Roles: []string{directory.RoleAdmin}}},
	}
}

func (f retFixture) hold(t *testing.T, id string, h retention.Hold) int64 {
	t.Helper()
	body, _ := json.Marshal(h)
	if _, err := f.dir.PutSetting(context.Background(), f.admin, retention.HoldSetting(), id, body); err != nil {
		t.Fatal(err)
	}
	_, v, err := f.dir.Settings(context.Background(), f.admin, retention.HoldSetting())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRetentionCursor(t *testing.T) {
	ctx := context.Background()
	f := newRetFixture(t)
	c, err := f.state.Cursor(ctx, "retention")
	if err != nil || c.Version != 0 || c.Pass != nil {
		t.Fatalf("no cursor yet: %+v %v", c, err)
	}
	at := time.Date(2026, 6, 15, 2, 0, 0, 0, time.UTC)
	c.Pass = &retention.Pass{Run: "r1", At: at, Full: true, Windows: []retention.Window{{From: at.Add(-72 * time.Hour), Until: at.Add(-24 * time.Hour)}},
		Versions: retention.Versions{Policies: 2, Holds: 1}, Day: at.Add(-48 * time.Hour), After: "x#m1",
		Tally: retention.Tally{Examined: 3, Deleted: 2, ByPolicy: map[string]int{"p": 2}}}
	if err := f.state.SaveCursor(ctx, "retention", c); err != nil {
		t.Fatal(err)
	}
	if err := f.state.SaveCursor(ctx, "retention", c); !fault.Is(err, fault.Conflict) {
		t.Errorf("a save from the version already saved over: %v, want Conflict", err)
	}
	got, err := f.state.Cursor(ctx, "retention")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Pass == nil || got.Pass.Run != "r1" || !got.Pass.At.Equal(at) || got.Pass.After != "x#m1" ||
		len(got.Pass.Windows) != 1 || got.Pass.Tally.ByPolicy["p"] != 2 || got.Pass.Versions.Policies != 2 {
		t.Errorf("cursor %+v pass %+v", got, got.Pass)
	}
	if other, _ := f.state.Cursor(ctx, "retention-dry-run"); other.Version != 0 {
		t.Errorf("the dry run's cursor is %+v, want none", other)
	}
}

// TestRetentionClaim: a claim commits only while the holds and policies are the versions the
// job decided with; records are found again by pass and listed by month.
func TestRetentionClaim(t *testing.T) {
	ctx := context.Background()
	f := newRetFixture(t)
	at := time.Date(2026, 6, 15, 2, 0, 0, 0, time.UTC)
	ds := make([]retention.Destruction, 150) // two transactions
	for i := range ds {
		ds[i] = retention.Destruction{ID: fmt.Sprintf("m%03d", i), Key: "k", Policy: "p", Run: "r1", At: at, State: retention.StatePending, ClaimedAt: at}
	}
	if n, err := f.state.Claim(ctx, ds, retention.Versions{}); err != nil || n != 150 {
		t.Fatalf("claim with no policies or holds ever written: %d %v", n, err)
	}
	hv := f.hold(t, "h1", retention.Hold{Scope: retention.Scope{Kind: retention.ScopeLabel, Value: "legal"}, Reason: "matter", Owner: "c@example.com"})
	if n, err := f.state.Claim(ctx, ds[:1], retention.Versions{}); !fault.Is(err, fault.Conflict) || n != 0 {
		t.Fatalf("claim after a hold was placed: %d %v, want Conflict", n, err)
	}
	if _, err := f.state.Claim(ctx, ds[:1], retention.Versions{Holds: hv}); err != nil {
		t.Fatalf("claim at the holds' version: %v", err)
	}

	got, err := f.state.Destructions(ctx, "r1", at, []string{"m000", "m149", "zzz"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["m149"].State != retention.StatePending {
		t.Fatalf("destructions %+v", got)
	}
	done := ds[0]
	done.State, done.DoneAt, done.Versions = retention.StateDestroyed, at.Add(time.Second), []string{"v1", "v2"}
	if err := f.state.Finish(ctx, []retention.Destruction{done}); err != nil {
		t.Fatal(err)
	}
	if other, _ := f.state.Destructions(ctx, "r2", at, []string{"m000"}); len(other) != 0 {
		t.Errorf("another run's records: %+v", other)
	}
	list, err := f.state.Destroyed(ctx, at.Add(-31*24*time.Hour), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 150 || list[0].ID != "m000" || list[0].State != retention.StateDestroyed || !slices.Equal(list[0].Versions, []string{"v1", "v2"}) {
		t.Errorf("%d records listed, first %+v", len(list), list[0])
	}
	if list, _ := f.state.Destroyed(ctx, at.Add(time.Second), at.Add(time.Hour)); len(list) != 0 {
		t.Errorf("records of a pass before from are listed: %d", len(list))
	}
}

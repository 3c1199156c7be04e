package retention_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	fn "github.com/mailroom/mailroom/functions/retention"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mail"
	"github.com/mailroom/mailroom/shared/retention"
	"github.com/mailroom/mailroom/shared/s3store"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

const day = retention.Day

// world is an archive on the local stack with its directory, state and a clock the test moves.
type world struct {
	clients awsclient.Clients
	cfg     fn.Config
	store   *s3store.Store
	index   *dynamo.ArchiveIndex
	archive *archive.Service
	state   *dynamo.RetentionState
	dir     *directory.Service
	admin   directory.Call
	now     time.Time
}

func newWorld(t testing.TB, bucket string) *world {
	t.Helper()
	clients := devstacktest.Clients(t)
	if bucket == "" {
		bucket = devstacktest.Bucket(t, "MailBucket")
	}
	cfg := fn.Config{
		MailBucket: bucket, ArchiveTable: devstacktest.Table(t, "ArchiveTable"),
		DirectoryTable: devstacktest.Table(t, "DirectoryTable"), StateTable: devstacktest.Table(t, "StateTable"),
		ArchivePrefix: "archive/", ReportPrefix: "reports/retention/", InboundPrefix: "inbound/", InboundRawDays: 30,
		Batch: 500, Every: 24 * time.Hour, FullEvery: 168 * time.Hour,
	}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	dirStore := dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, devstacktest.Table(t, "AuditTable"))
	w := &world{
		clients: clients, cfg: cfg,
		store: s3store.New(clients.S3, bucket),
		index: dynamo.NewArchiveIndex(clients.DynamoDB, cfg.ArchiveTable),
		state: dynamo.NewRetentionState(clients.DynamoDB, cfg.StateTable, cfg.DirectoryTable),
		dir:   &directory.Service{Store: dirStore, Audit: dirStore, Now: time.Now},
		admin: directory.Call{Principal: directory.Principal{Subject: "test", Roles: []string{directory.RoleAdmin}}},
		now:   time.Date(2026, 6, 15, 3, 0, 0, 0, time.UTC),
	}
	w.archive = &archive.Service{Objects: w.store, Index: w.index, Prefix: cfg.ArchivePrefix, Now: func() time.Time { return w.now }}
	return w
}

// job is the function's job on the world's clock.
func (w *world) job() *retention.Job {
	j := fn.NewJob(w.cfg, w.clients)
	j.Now = func() time.Time { return w.now }
	return j
}

type msg struct {
	id      string
	age     time.Duration // before w.now
	to, cc  []string
	subject string
	groups  []string
	labels  []string
}

// deliver archives a message received age before now, as the inbound path does: raw bytes
// under inbound/, then archive.Service with a classifier standing in for routing.
func (w *world) deliver(t testing.TB, m msg) archive.Record {
	t.Helper()
	ctx := context.Background()
	if len(m.to) == 0 {
		m.to = []string{"sales@example.com"}
	}
	if m.subject == "" {
		m.subject = "Order " + m.id
	}
	at := w.now.Add(-m.age)
	raw := fmt.Sprintf("From: Kim <kim@client.example>\r\nTo: %s\r\n", strings.Join(m.to, ", "))
	if len(m.cc) > 0 {
		raw += "Cc: " + strings.Join(m.cc, ", ") + "\r\n"
	}
	raw += fmt.Sprintf("Subject: %s\r\nMessage-ID: <%s@client.example>\r\nDate: %s\r\n\r\nHello.\r\n", m.subject, m.id, at.Format(time.RFC1123Z))
	if _, err := w.store.Put(ctx, "inbound/"+m.id, strings.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	res, err := w.archive.Classify(ctx, archive.Received{ID: m.id, RawKey: "inbound/" + m.id, ReceivedAt: at,
		EnvelopeFrom: "kim@client.example", Recipients: m.to},
		func(_ context.Context, _ *mail.Message, r *archive.Record) error {
			r.Groups, r.Labels = m.groups, m.labels
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return res.Record
}

func (w *world) setting(t testing.TB, kind directory.SettingKind, id string, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dir.PutSetting(context.Background(), w.admin, kind, id, body); err != nil {
		t.Fatal(err)
	}
}

func (w *world) keep(t testing.TB, id, kind, value string, days int) {
	t.Helper()
	w.setting(t, retention.PolicySetting(), id, retention.Policy{Scope: retention.Scope{Kind: kind, Value: value}, KeepDays: days})
}

func (w *world) hold(t testing.TB, id, kind, value string) {
	t.Helper()
	w.setting(t, retention.HoldSetting(), id, retention.Hold{Scope: retention.Scope{Kind: kind, Value: value},
		Reason: "Case 26-118", Owner: "counsel@example.com"})
}

func (w *world) run(t testing.TB, j *retention.Job) retention.Result {
	t.Helper()
	res, err := j.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// present reports whether the message is whole: its record, every listing, and a version of its
// original; and fails the test when only part of it is left.
func (w *world) present(t testing.TB, rec archive.Record) bool {
	t.Helper()
	ctx := context.Background()
	_, err := w.index.Get(ctx, rec.ID)
	hasRecord := err == nil
	if err != nil && !fault.Is(err, fault.NotFound) {
		t.Fatal(err)
	}
	listings := 0
	for _, k := range w.index.ListingKeys(rec) {
		out, err := w.clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &w.cfg.ArchiveTable, Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Item != nil {
			listings++
		}
	}
	versions := w.versions(t, rec.Key)
	whole := hasRecord && listings == len(w.index.ListingKeys(rec)) && versions > 0
	gone := !hasRecord && listings == 0 && versions == 0
	if !whole && !gone {
		t.Errorf("%s is half deleted: record %v, %d of %d listings, %d versions", rec.ID, hasRecord, listings, len(w.index.ListingKeys(rec)), versions)
	}
	return whole
}

// versions counts the versions and delete markers of key.
func (w *world) versions(t testing.TB, key string) int {
	t.Helper()
	out, err := w.clients.S3.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: &w.cfg.MailBucket, Prefix: &key})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			n++
		}
	}
	for _, m := range out.DeleteMarkers {
		if aws.ToString(m.Key) == key {
			n++
		}
	}
	return n
}

func (w *world) report(t testing.TB, key string) (retention.Report, []map[string]any) {
	t.Helper()
	var rep retention.Report
	if err := json.Unmarshal(w.object(t, key), &rep); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, p := range rep.Parts {
		dec := json.NewDecoder(bytes.NewReader(w.object(t, p)))
		for dec.More() {
			var l map[string]any
			if err := dec.Decode(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
	}
	return rep, lines
}

func (w *world) object(t testing.TB, key string) []byte {
	t.Helper()
	body, _, err := w.store.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) destroyed(t testing.TB) map[string][]retention.Destruction {
	t.Helper()
	list, err := w.state.Destroyed(context.Background(), w.now.Add(-400*day), w.now.Add(400*day))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]retention.Destruction{}
	for _, d := range list {
		out[d.ID] = append(out[d.ID], d)
	}
	return out
}

func actions(lines []map[string]any) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		out[l["action"].(string)] = append(out[l["action"].(string)], l["id"].(string))
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}

// TestRetentionEndToEnd: policies by group, label and domain, the longest winning; a hold; a
// message no policy covers. A dry run reports and deletes nothing; the real run deletes exactly
// the expired, unheld messages (every S3 version, the record and its listings) with a record of
// each destruction and a report; the next run deletes nothing twice, and the day after only what
// came of age.
func TestRetentionEndToEnd(t *testing.T) {
	w := newWorld(t, "")
	w.keep(t, "sales-30", retention.ScopeGroup, "sales", 30)
	w.keep(t, "support-365", retention.ScopeGroup, "support", 365)
	w.setting(t, retention.PolicySetting(), "legal-forever", retention.Policy{Scope: retention.Scope{Kind: retention.ScopeLabel, Value: "legal"}, Forever: true})
	w.keep(t, "partner-10", retention.ScopeDomain, "partner.example", 10)
	w.hold(t, "ana-matter", retention.ScopeMailbox, "ana@example.com")

	recs := map[string]archive.Record{}
	for _, m := range []msg{
		{id: "m01", age: 40 * day, groups: []string{"sales"}},
		{id: "m02", age: 40 * day, groups: []string{"sales"}, labels: []string{"Legal"}},
		{id: "m03", age: 10 * day, groups: []string{"sales"}},
		{id: "m04", age: 200 * day, groups: []string{"support"}},
		{id: "m05", age: 200 * day, groups: []string{"support", "sales"}},
		{id: "m06", age: 400 * day, groups: []string{"support"}},
		{id: "m07", age: 400 * day, to: []string{"info@other.example"}},
		{id: "m08", age: 400 * day, groups: []string{"support"}, cc: []string{"Ana@example.com"}},
		{id: "m09", age: 30 * day, groups: []string{"sales"}},
		{id: "m10", age: 11 * day, to: []string{"bob@partner.example"}},
		{id: "m11", age: 29*day + 12*time.Hour, groups: []string{"sales"}},
		{id: "m12", age: 40 * day, groups: []string{"sales"}, labels: []string{"invoices"}},
	} {
		recs[m.id] = w.deliver(t, m)
	}
	// m12's original has an older version under it and a delete marker on top: all go.
	ctx := context.Background()
	key12 := recs["m12"].Key
	if _, err := w.store.Put(ctx, key12, strings.NewReader("a second version"), 16); err != nil {
		t.Fatal(err)
	}
	if _, err := w.clients.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.cfg.MailBucket, Key: &key12}); err != nil {
		t.Fatal(err)
	}
	if n := w.versions(t, key12); n != 3 {
		t.Fatalf("m12 has %d versions and markers, want 3", n)
	}
	expired := []string{"m01", "m06", "m09", "m10", "m12"}

	// The dry run: the report says what would go; nothing goes.
	dry := w.job()
	dry.DryRun = true
	res := w.run(t, dry)
	if res.Outcome != retention.Complete || !res.DryRun || res.Tally.WouldDelete != 5 || res.Tally.Deleted != 0 {
		t.Fatalf("dry run: %+v", res)
	}
	for id, rec := range recs {
		if !w.present(t, rec) {
			t.Errorf("the dry run deleted %s", id)
		}
	}
	if d := w.destroyed(t); len(d) != 0 {
		t.Errorf("the dry run wrote destruction records: %v", d)
	}
	rep, lines := w.report(t, res.Report)
	got := actions(lines)
	if !rep.DryRun || !rep.Complete || !rep.Full || rep.WouldDelete != 5 || rep.Held != 1 || rep.NoPolicy != 1 || rep.Forever != 1 ||
		fmt.Sprint(got["would-delete"]) != fmt.Sprint(expired) || fmt.Sprint(got["held"]) != "[m08]" || len(got["deleted"]) != 0 {
		t.Errorf("dry-run report %+v\nlines by action %v", rep, got)
	}

	// The real run.
	j := w.job()
	res = w.run(t, j)
	want := retention.Tally{Examined: 12, Deleted: 5, Held: 1, Kept: 4, Forever: 1, NoPolicy: 1,
		ByPolicy: map[string]int{"sales-30": 3, "support-365": 1, "partner-10": 1}, ByHold: map[string]int{"ana-matter": 1}}
	if res.Outcome != retention.Complete || res.DryRun || fmt.Sprint(res.Tally) != fmt.Sprint(want) {
		t.Fatalf("run: %+v\nwant tally %+v", res, want)
	}
	for id, rec := range recs {
		if got, want := w.present(t, rec), !slices.Contains(expired, id); got != want {
			t.Errorf("%s present %v, want %v", id, got, want)
		}
	}
	records := w.destroyed(t)
	if len(records) != 5 {
		t.Errorf("destruction records for %d messages, want 5", len(records))
	}
	policyOf := map[string]string{"m01": "sales-30", "m06": "support-365", "m09": "sales-30", "m10": "partner-10", "m12": "sales-30"}
	for _, id := range expired {
		ds := records[id]
		if len(ds) != 1 {
			t.Errorf("%s has %d destruction records, want 1", id, len(ds))
			continue
		}
		d, rec := ds[0], recs[id]
		if d.State != retention.StateDestroyed || d.Policy != policyOf[id] || d.Key != rec.Key || d.SHA256 != rec.SHA256 || d.SHA256 == "" ||
			!d.ReceivedAt.Equal(rec.ReceivedAt) || d.Run != res.Run || d.DoneAt.Before(d.ClaimedAt) || len(d.Versions) == 0 {
			t.Errorf("%s destruction %+v", id, d)
		}
	}
	if n := len(records["m12"][0].Versions); n != 3 {
		t.Errorf("m12's record names %d versions deleted, want 3", n)
	}
	// Raw copies under inbound/: destroyed with a message younger than the lifecycle's 30 days
	// (and the 3 it may lag); older ones are the lifecycle's, which the local stack does not run.
	for id, want := range map[string]int{"m10": 0, "m09": 0, "m01": 1, "m06": 1, "m03": 1} {
		if got := w.versions(t, recs[id].RawKey); got != want {
			t.Errorf("%s's raw copy has %d versions, want %d", id, got, want)
		}
	}
	if n := len(records["m10"][0].Versions); n != 2 {
		t.Errorf("m10's record names %d versions deleted, want its original's and its raw copy's", n)
	}
	rep, lines = w.report(t, res.Report)
	if got := actions(lines); rep.DryRun || !rep.Complete || rep.Deleted != 5 || fmt.Sprint(got["deleted"]) != fmt.Sprint(expired) || fmt.Sprint(got["held"]) != "[m08]" {
		t.Errorf("report %+v\nlines %v", rep, got)
	}

	// Again the same day: no pass is due.
	if res := w.run(t, w.job()); res.Outcome != retention.Idle {
		t.Errorf("second run the same day: %+v, want idle", res)
	}

	// The next day: an incremental pass, which finds m11 come of age and nothing else.
	w.now = w.now.Add(day)
	res = w.run(t, w.job())
	if res.Outcome != retention.Complete || res.Tally.Deleted != 1 || res.Tally.ByPolicy["sales-30"] != 1 {
		t.Fatalf("next day: %+v", res)
	}
	if rep, _ := w.report(t, res.Report); rep.Full {
		t.Errorf("the next day's pass is full; nothing changed, it should walk only the days come of age: %+v", rep.Windows)
	}
	if w.present(t, recs["m11"]) {
		t.Error("m11 survived its 30 days")
	}
	// A hold placed (and a new day): a full pass, which deletes nothing twice.
	w.hold(t, "another", retention.ScopeLabel, "nothing")
	w.now = w.now.Add(day)
	res = w.run(t, w.job())
	if rep, _ := w.report(t, res.Report); res.Outcome != retention.Complete || res.Tally.Deleted != 0 || !rep.Full || res.Tally.Gone != 0 {
		t.Errorf("after a hold changed: %+v full %v", res, rep.Full)
	}
	records = w.destroyed(t)
	for id, ds := range records {
		if len(ds) != 1 || ds[0].State != retention.StateDestroyed {
			t.Errorf("%s: %+v, want one destroyed record", id, ds)
		}
	}
	if len(records) != 6 {
		t.Errorf("%d messages destroyed in all, want 6", len(records))
	}
}

// flaky fails the nth call to one of its methods, once, as a function timing out there would.
type flaky struct {
	retention.Index
	retention.State
	failDelete, failFinish int
	deletes, finishes      int
}

var errInjected = fault.New(fault.Transient, "test", "the invocation stopped here")

func (f *flaky) Delete(ctx context.Context, recs []archive.Record) error {
	if f.deletes++; f.deletes == f.failDelete {
		return errInjected
	}
	return f.Index.Delete(ctx, recs)
}

func (f *flaky) Finish(ctx context.Context, ds []retention.Destruction) error {
	if len(ds) > 0 {
		if f.finishes++; f.finishes == f.failFinish {
			return errInjected
		}
	}
	return f.State.Finish(ctx, ds)
}

// TestRetentionResumes: a pass stopped by its deadline, and invocations that stop between the
// S3 deletion and the metadata's, or between the metadata's and the record's, are taken up where
// they stopped: every expired message is destroyed exactly once, with exactly one record.
func TestRetentionResumes(t *testing.T) {
	w := newWorld(t, "")
	w.keep(t, "sales-30", retention.ScopeGroup, "sales", 30)
	// Forty messages on one day, so that every page is a batch of five.
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var recs []archive.Record
	for i := range 40 {
		at := start.Add(time.Duration(i) * 30 * time.Minute)
		recs = append(recs, w.deliver(t, msg{id: fmt.Sprintf("r%02d", i), age: w.now.Sub(at), groups: []string{"sales"}}))
	}
	job := func() *retention.Job {
		j := w.job()
		j.Batch = 5
		return j
	}

	// Its deadline is too near to start: the pass is planned and stops.
	j := job()
	j.Margin = 2 * time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	res, err := j.Run(ctx)
	if err != nil || res.Outcome != retention.Stopped || res.Tally.Examined != 0 {
		t.Fatalf("run with no time: %+v %v", res, err)
	}

	// The second invocation stops after batch 3's S3 versions are deleted, before its metadata.
	j = job()
	f := &flaky{Index: j.Index, State: j.State, failDelete: 3}
	j.Index, j.State = f, f
	if res, err = j.Run(context.Background()); !fault.Is(err, fault.Transient) || res.Tally.Deleted != 10 {
		t.Fatalf("interrupted run: %+v %v", res, err)
	}
	// The third stops after the metadata of its second batch is deleted, before the records say so.
	j = job()
	f = &flaky{Index: j.Index, State: j.State, failFinish: 2}
	j.Index, j.State = f, f
	if res, err = j.Run(context.Background()); !fault.Is(err, fault.Transient) {
		t.Fatalf("second interrupted run: %+v %v", res, err)
	}
	res = w.run(t, job())
	if res.Outcome != retention.Complete || res.Tally.Deleted != 40 || res.Tally.Examined != 40 {
		t.Errorf("resumed run: %+v", res)
	}
	for _, rec := range recs {
		if w.present(t, rec) {
			t.Errorf("%s survived", rec.ID)
		}
	}
	records := w.destroyed(t)
	notes := 0
	for _, rec := range recs {
		ds := records[rec.ID]
		if len(ds) != 1 || ds[0].State != retention.StateDestroyed {
			t.Errorf("%s: %+v, want one destroyed record", rec.ID, ds)
			continue
		}
		if ds[0].Note != "" {
			notes++
		}
	}
	if notes != 5 {
		t.Errorf("%d records completed by a later invocation, want the 5 of the batch whose records were not written", notes)
	}
	rep, lines := w.report(t, res.Report)
	if rep.Invocations != 4 || !rep.Complete || len(actions(lines)["deleted"]) != 40 {
		t.Errorf("report: %+v with %d deleted lines", rep, len(actions(lines)["deleted"]))
	}
}

// TestRetentionNeverDeletesHeld: whenever a hold is placed, before the run or while it is in
// progress (after the job decided a batch and before it claims it; after the claim and before it
// deletes), no message the hold covers is deleted, and the rest are.
func TestRetentionNeverDeletesHeld(t *testing.T) {
	for _, when := range []string{"before the run", "before the claim", "after the claim"} {
		t.Run(when, func(t *testing.T) {
			w := newWorld(t, "")
			w.keep(t, "sales-30", retention.ScopeGroup, "sales", 30)
			var recs []archive.Record
			for i := range 21 {
				m := msg{id: fmt.Sprintf("h%02d", i), age: 40*day + time.Duration(i)*time.Hour, groups: []string{"sales"}}
				if i%2 == 1 {
					m.labels = []string{"Matter-7"}
				}
				recs = append(recs, w.deliver(t, m))
			}
			placed := false
			place := func(context.Context, []archive.Record) {
				if !placed {
					placed = true
					w.hold(t, "matter-7", retention.ScopeLabel, "matter-7")
				}
			}
			j := w.job()
			j.Batch = 7
			switch when {
			case "before the run":
				place(nil, nil)
			case "before the claim":
				j.Hooks.BeforeClaim = place
			case "after the claim":
				j.Hooks.BeforeDelete = place
			}
			res := w.run(t, j)
			if !placed || res.Outcome != retention.Complete || res.Tally.Deleted != 11 || res.Tally.Held != 10 || res.Tally.ByHold["matter-7"] != 10 {
				t.Fatalf("run: %+v", res)
			}
			records := w.destroyed(t)
			for i, rec := range recs {
				held := i%2 == 1
				if got := w.present(t, rec); got != held {
					t.Errorf("%s (held %v) present %v", rec.ID, held, got)
				}
				for _, d := range records[rec.ID] {
					if held && (d.State != retention.StateCancelled || d.Note != "held by [matter-7]") || !held && d.State != retention.StateDestroyed {
						t.Errorf("%s (held %v): record %s %q", rec.ID, held, d.State, d.Note)
					}
				}
			}
			// Cancelled records appear only when the claim was already made.
			if cancelled := res.Tally.Cancelled; when == "after the claim" && cancelled != 3 || when != "after the claim" && cancelled != 0 {
				t.Errorf("%d destructions cancelled", cancelled)
			}
		})
	}
}

// TestRetentionLease: while one invocation runs, another finds the lease taken and does nothing.
func TestRetentionLease(t *testing.T) {
	w := newWorld(t, "")
	w.keep(t, "sales-30", retention.ScopeGroup, "sales", 30)
	w.deliver(t, msg{id: "l1", age: 40 * day, groups: []string{"sales"}})
	var other retention.Result
	j := w.job()
	j.Hooks.BeforeClaim = func(ctx context.Context, _ []archive.Record) {
		var err error
		if other, err = w.job().Run(ctx); err != nil {
			t.Error(err)
		}
	}
	if res := w.run(t, j); res.Tally.Deleted != 1 || other.Outcome != retention.Busy {
		t.Errorf("first %+v, second %+v (want busy)", res, other)
	}
}

// TestRetentionObjectLock: an original S3 Object Lock keeps is skipped and reported, never
// bypassed: the message stays whole, its destruction record says until when, and the pass asks
// to be looked at again then.
func TestRetentionObjectLock(t *testing.T) {
	clients := devstacktest.Clients(t)
	w := newWorld(t, lockedBucket(t, clients.S3))
	w.keep(t, "sales-30", retention.ScopeGroup, "sales", 30)
	free := w.deliver(t, msg{id: "o1", age: 40 * day, groups: []string{"sales"}})
	locked := w.deliver(t, msg{id: "o2", age: 40 * day, groups: []string{"sales"}})
	until := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	if _, err := clients.S3.PutObjectRetention(context.Background(), &s3.PutObjectRetentionInput{
		Bucket: &w.cfg.MailBucket, Key: &locked.Key,
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: &until},
	}); err != nil {
		t.Fatal(err)
	}
	res := w.run(t, w.job())
	if res.Outcome != retention.Complete || res.Tally.Deleted != 1 || res.Tally.Locked != 1 || !res.Tally.LockedUntil.Equal(until) {
		t.Fatalf("run: %+v", res)
	}
	if w.present(t, free) || !w.present(t, locked) {
		t.Error("want o1 deleted and o2, locked, whole")
	}
	d := w.destroyed(t)["o2"]
	if len(d) != 1 || d[0].State != retention.StateLocked || !d[0].LockedUntil.Equal(until) {
		t.Errorf("o2's record: %+v", d)
	}
	_, lines := w.report(t, res.Report)
	if got := actions(lines); fmt.Sprint(got["locked"]) != "[o2]" {
		t.Errorf("report lines %v", got)
	}
	c, err := w.state.Cursor(context.Background(), "retention")
	if err != nil || c.Last == nil || !c.Last.RecheckAt.Equal(until) {
		t.Errorf("the pass does not ask to look again when the lock ends: %+v %v", c.Last, err)
	}
}

// lockedBucket is a bucket with Object Lock for this test, emptied after it as its owner may:
// legal holds lifted, governance retention bypassed.
func lockedBucket(t testing.TB, c *s3.Client) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	name := "retention-locked-" + hex.EncodeToString(b)
	in := &s3.CreateBucketInput{Bucket: &name, ObjectLockEnabledForBucket: aws.Bool(true)}
	if r := c.Options().Region; r != "" && r != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &name})
		if err != nil {
			t.Error(err)
			return
		}
		for _, v := range out.Versions {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &name, Key: v.Key, VersionId: v.VersionId, BypassGovernanceRetention: aws.Bool(true)}); err != nil {
				t.Errorf("clean up %s: %v", aws.ToString(v.Key), err)
			}
		}
		for _, m := range out.DeleteMarkers {
			c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &name, Key: m.Key, VersionId: m.VersionId})
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &name}); err != nil {
			t.Errorf("delete bucket %s: %v", name, err)
		}
	})
	return name
}

// TestHandler: the function's handler runs the job, and an event asking for a dry run gets one
// whatever the configuration.
func TestHandler(t *testing.T) {
	w := newWorld(t, "")
	w.keep(t, "sales-30", retention.ScopeGroup, "sales", 30)
	rec := w.deliver(t, msg{id: "x1", age: 40 * day, groups: []string{"sales"}})
	h := fn.NewHandler(w.job(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := h.Handle(context.Background(), fn.Event{DryRun: true})
	if err != nil || !res.DryRun || res.Tally.WouldDelete != 1 || !w.present(t, rec) {
		t.Fatalf("dry-run event: %+v %v", res, err)
	}
	// Asked again the same day: a fresh report.
	w.now = w.now.Add(time.Minute)
	again, err := h.Handle(context.Background(), fn.Event{DryRun: true})
	if err != nil || again.Outcome != retention.Complete || again.Run == res.Run || again.Tally.WouldDelete != 1 {
		t.Fatalf("second dry-run event: %+v %v", again, err)
	}
	res, err = h.Handle(context.Background(), fn.Event{})
	if err != nil || res.DryRun || res.Tally.Deleted != 1 || w.present(t, rec) {
		t.Fatalf("scheduled event: %+v %v", res, err)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, c := range []fn.Config{{Batch: 0, Every: time.Hour, FullEvery: time.Hour}, {Batch: 1001, Every: time.Hour, FullEvery: time.Hour},
		{Batch: 5, Every: time.Minute, FullEvery: time.Hour}, {Batch: 5, Every: 24 * time.Hour, FullEvery: time.Hour}} {
		if err := c.Check(); err == nil {
			t.Errorf("%+v passes the check", c)
		}
	}
}

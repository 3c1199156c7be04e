package dynamo_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
)

func TestJobs(t *testing.T) {
	ctx := context.Background()
	jobs := dynamo.NewJobs(devstacktest.Clients(t).DynamoDB, devstacktest.Table(t, "StateTable"))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	job := export.Job{ID: "j1", Kind: export.KindExport, State: export.StateRunning, CreatedAt: at, UpdatedAt: at,
		Export: &export.ExportState{Format: export.FormatZip, Key: "exports/j1.zip", Listing: export.Listing{Mailboxes: []string{"ana@example.com"}}}}
	if err := jobs.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Create(ctx, job); !fault.Is(err, fault.Conflict) {
		t.Errorf("second Create: %v, want Conflict", err)
	}
	if _, err := jobs.Get(ctx, export.KindImport, "j1"); !fault.Is(err, fault.NotFound) {
		t.Errorf("Get of another kind: %v, want NotFound", err)
	}

	// Parts are saved with the state; one with entries larger than an item is cut in pieces.
	big := make([]byte, 700<<10)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	parts := []*export.Part{{Number: 1, ETag: `"e1"`, Size: 5 << 20, Entries: big}, {Number: 2, ETag: `"e2"`, Size: 6 << 20}}
	for _, p := range parts {
		stale := job
		job.Export.Parts++
		if err := jobs.Save(ctx, &job, p); err != nil {
			t.Fatal(err)
		}
		if job.Version != stale.Version+1 {
			t.Errorf("version %d after a save from %d", job.Version, stale.Version)
		}
		// A save from the version before loses: nothing of it is written.
		if err := jobs.Save(ctx, &stale, &export.Part{Number: 9, ETag: "lost"}); !fault.Is(err, fault.Conflict) {
			t.Errorf("stale Save: %v, want Conflict", err)
		}
	}
	got, err := jobs.Get(ctx, export.KindExport, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || got.Export.Parts != 2 || got.Export.Key != "exports/j1.zip" || got.Export.Listing.Mailboxes[0] != "ana@example.com" {
		t.Errorf("Get = %+v %+v", got, got.Export)
	}
	var read []export.Part
	if err := jobs.Parts(ctx, export.KindExport, "j1", func(p export.Part) error { read = append(read, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(read) != 2 || read[0].ETag != `"e1"` || !bytes.Equal(read[0].Entries, big) || read[0].Size != 5<<20 ||
		read[1].Number != 2 || read[1].ETag != `"e2"` || len(read[1].Entries) != 0 {
		t.Errorf("Parts read %d parts: %v %q %d bytes", len(read), read[0].Number, read[0].ETag, len(read[0].Entries))
	}
}

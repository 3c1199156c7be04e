package export_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mbox"
)

// failingArchiver fails with a transient error for one message, once.
type failingArchiver struct {
	export.Archiver
	id string
}

func (a *failingArchiver) Archive(ctx context.Context, in archive.Received) (archive.Result, error) {
	if in.ID == a.id {
		a.id = ""
		return archive.Result{}, fault.New(fault.Transient, "test", "DynamoDB is unavailable")
	}
	return a.Archiver.Archive(ctx, in)
}

// TestImport imports an mbox from the bucket into a mailbox: a well-formed message, a malformed
// one (archived and flagged), a duplicate, one over the size limit, one whose date is only in
// its header, a bounce. The first invocation stops after a message, the second fails before it
// could save where it was; the third finishes, and the report is what one run would give.
func TestImport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	when := time.Date(2019, 4, 5, 6, 7, 8, 0, time.UTC)
	good := message(1, 3000)
	malformed := []byte("this is not a header\nSubject: broken\n\nbody\n")
	big := message(4, 1536<<10)
	dated := []byte("From: c@old.example\r\nDate: Tue, 1 Jan 2019 10:00:00 +0800\r\nMessage-ID: <d@old.example>\r\nSubject: dated\r\n\r\nhi\r\n")
	bounce := []byte("From: MAILER-DAEMON@old.example\r\nDate: Tue, 1 Jan 2019 10:00:00 +0000\r\nMessage-ID: <b@old.example>\r\nSubject: failure\r\n\r\nundeliverable\r\n")
	var file bytes.Buffer
	w := mbox.NewWriter(&file)
	for _, m := range []struct {
		env mbox.Envelope
		raw []byte
	}{
		{mbox.Envelope{Sender: "bob@old.example", Date: when}, good},
		{mbox.Envelope{Sender: "carol@old.example", Date: when}, malformed},
		{mbox.Envelope{Sender: "bob@old.example", Date: when.Add(time.Hour)}, good},
		{mbox.Envelope{Sender: "bob@old.example", Date: when}, big},
		{mbox.Envelope{Sender: "c@old.example"}, dated},
		{mbox.Envelope{Date: when}, bounce},
	} {
		if _, err := w.WriteMessage(m.env, bytes.NewReader(m.raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.PutFile(ctx, "imports/old.mbox", file.Bytes(), "application/mbox", ""); err != nil {
		t.Fatal(err)
	}

	imp := *f.importer
	imp.MaxSize = 1 << 20
	imp.Checkpoint = time.Hour // no checkpoint but at a stop: the failure below loses work
	mailbox := "Ana@Example.com"
	job, err := imp.Start(ctx, export.ImportRequest{ID: "old", Key: "imports/old.mbox", Mailbox: mailbox})
	if err != nil {
		t.Fatal(err)
	}
	job, err = imp.Run(ctx, job.ID, time.Now().Add(-time.Second))
	if err != nil || job.State != export.StateRunning || job.Import.Index != 1 || job.Import.Report.Imported != 1 {
		t.Fatalf("first invocation: %v, %s at message %d, %+v", err, job.State, job.Import.Index, job.Import.Report)
	}
	failing := imp
	failing.Archive = &failingArchiver{Archiver: imp.Archive, id: export.ImportID("ana@example.com", dated)}
	if job, err = failing.Run(ctx, job.ID, time.Time{}); !fault.Is(err, fault.Transient) || job.State != export.StateRunning {
		t.Fatalf("second invocation: %v, %s", err, job.State)
	}
	if job, err = imp.Run(ctx, job.ID, time.Time{}); err != nil || job.State != export.StateDone {
		t.Fatalf("third invocation: %v, %s %s", err, job.State, job.Error)
	}
	rep := job.Import.Report
	if rep.Imported != 4 || rep.Duplicates != 1 || rep.Flagged != 1 || len(rep.Failed) != 1 ||
		rep.Failed[0].Index != 4 || !strings.Contains(rep.Failed[0].Reason, "larger than 1 MiB") || job.Import.Index != 6 {
		t.Errorf("report %+v after %d messages", rep, job.Import.Index)
	}

	// Each message is archived as if received, for the mailbox.
	rec, err := f.index.Get(ctx, export.ImportID("ana@example.com", good))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Source != "import" || !rec.ReceivedAt.Equal(when) || rec.EnvelopeFrom != "bob@old.example" ||
		!slices.Equal(rec.Recipients, []string{"ana@example.com"}) || rec.SHA256 != sum(good) || len(rec.Flags) != 0 {
		t.Errorf("imported record %+v", rec)
	}
	if rec, err := f.index.Get(ctx, export.ImportID("ana@example.com", malformed)); err != nil || !slices.Contains(rec.Flags, "garbage-before-header") {
		t.Errorf("malformed message: %v, flags %v", err, rec.Flags)
	}
	if rec, err := f.index.Get(ctx, export.ImportID("ana@example.com", dated)); err != nil || !rec.ReceivedAt.Equal(time.Date(2019, 1, 1, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("message dated by its header: %v, received %v", err, rec.ReceivedAt)
	}
	if rec, err := f.index.Get(ctx, export.ImportID("ana@example.com", bounce)); err != nil || rec.EnvelopeFrom != "" {
		t.Errorf("bounce: %v, envelope sender %q", err, rec.EnvelopeFrom)
	}

	// The same file again, in one call: nothing new.
	rep, err = imp.Import(ctx, mailbox, bytes.NewReader(file.Bytes()))
	if err != nil || rep.Imported != 0 || rep.Duplicates != 5 || len(rep.Failed) != 1 {
		t.Errorf("again: %v, %+v", err, rep)
	}
	// The same file into another mailbox: everything, again.
	if rep, err = imp.Import(ctx, "bo@example.com", bytes.NewReader(file.Bytes())); err != nil || rep.Imported != 4 || rep.Duplicates != 1 {
		t.Errorf("into another mailbox: %v, %+v", err, rep)
	}
}

func TestImportRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.importer.Start(ctx, export.ImportRequest{Key: "imports/none.mbox", Mailbox: "ana@example.com"}); fault.FieldOf(err) != "key" {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := f.importer.Start(ctx, export.ImportRequest{Key: "x", Mailbox: "ana"}); fault.FieldOf(err) != "mailbox" {
		t.Errorf("a bad mailbox: %v", err)
	}
	if err := f.store.PutFile(ctx, "imports/message.eml", []byte("Subject: not an mbox\r\n\r\nhi\r\n"), "message/rfc822", ""); err != nil {
		t.Fatal(err)
	}
	job, err := f.importer.Start(ctx, export.ImportRequest{Key: "imports/message.eml", Mailbox: "ana@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	job, err = f.importer.Run(ctx, job.ID, time.Time{})
	if !fault.Is(err, fault.Invalid) || job.State != export.StateFailed || !strings.Contains(job.Error, "not an mbox") {
		t.Errorf("a file that is no mbox: %v, %s %q", err, job.State, job.Error)
	}
}

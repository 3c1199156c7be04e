package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/mbox"
)

// mailbox is a mailbox of 26 messages on the local stack, about 10 MB: two parts and a bit at
// S3's smallest part size. Some messages are hard for mbox (From lines in the body, no final line
// end, LF line ends, a bounce's empty envelope sender); one is also in another mailbox, one only
// there, and one's original is gone (destroyed after it was listed).
type mailbox struct {
	f       *fixture
	records []archive.Record // sales@'s, oldest first, the gone one left out
	raw     map[string][]byte
	gone    string
}

func newMailbox(t *testing.T) *mailbox {
	t.Helper()
	f := newFixture(t)
	mb := &mailbox{f: f, raw: map[string][]byte{}}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := range 26 {
		raw := message(i, 400<<10)
		switch i {
		case 3:
			raw = append(raw, "From the desk of Ana\r\n>From quoted\r\n>>From twice\r\n"...)
		case 4:
			raw = append(raw, "no final line end"...)
		case 5:
			raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
		case 6:
			raw = []byte("From: a@b\r\nSubject: short\r\n\r\n")
		}
		id := fmt.Sprintf("msg%02d", i)
		envelope := "ana@example.org"
		if i == 7 {
			envelope = "" // a bounce
		}
		recipients := []string{"sales@example.com"}
		switch i {
		case 8:
			recipients = append(recipients, "ops@example.com")
		case 9:
			recipients = []string{"ops@example.com"}
		}
		rec := f.receive(t, id, raw, at.Add(time.Duration(i)*time.Minute+123*time.Millisecond), envelope, recipients...)
		if i == 9 {
			continue
		}
		if i == 10 {
			mb.gone = id
			if _, err := f.clients.S3.DeleteObject(context.Background(), deleteInput(f.bucket, rec.Key)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mb.records = append(mb.records, rec)
		mb.raw[id] = raw
	}
	return mb
}

// checkMbox reads an exported mbox back: every message of the mailbox, oldest first, byte for
// byte (a line end added where one lacked), with its envelope.
func (mb *mailbox) checkMbox(t *testing.T, data []byte) {
	t.Helper()
	r := mbox.NewReader(bytes.NewReader(data))
	for i := 0; ; i++ {
		env, err := r.Next()
		if err == io.EOF {
			if i != len(mb.records) {
				t.Errorf("the mbox holds %d messages, want %d", i, len(mb.records))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(mb.records) {
			t.Fatalf("the mbox holds more than %d messages", len(mb.records))
		}
		rec := mb.records[i]
		want := mb.raw[rec.ID]
		if !bytes.HasSuffix(want, []byte("\n")) {
			want = append(slices.Clone(want), '\n')
		} else if sum(got) != rec.SHA256 {
			t.Errorf("message %d (%s): SHA-256 %s, archived %s", i, rec.ID, sum(got), rec.SHA256)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("message %d (%s): %d bytes differ from the %d archived", i, rec.ID, len(got), len(want))
		}
		if env.Sender != rec.EnvelopeFrom || !env.Date.Equal(rec.ReceivedAt.Truncate(time.Second)) {
			t.Errorf("message %d (%s): envelope %+v, want %q %v", i, rec.ID, env, rec.EnvelopeFrom, rec.ReceivedAt)
		}
	}
}

// checkZip reads an exported zip back: one <received>-<id>.eml per message, byte for byte.
func (mb *mailbox) checkZip(t *testing.T, data []byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != len(mb.records) {
		t.Fatalf("the zip holds %d entries, want %d", len(zr.File), len(mb.records))
	}
	for i, zf := range zr.File {
		rec := mb.records[i]
		if want := rec.ReceivedAt.UTC().Format("20060102T150405Z") + "-" + rec.ID + ".eml"; zf.Name != want {
			t.Errorf("entry %d: %s, want %s", i, zf.Name, want)
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || sum(got) != rec.SHA256 {
			t.Errorf("entry %s: %v, SHA-256 %s, archived %s", zf.Name, err, sum(got), rec.SHA256)
		}
	}
}

func TestExportMailbox(t *testing.T) {
	mb := newMailbox(t)
	for _, format := range []string{export.FormatMbox, export.FormatZip} {
		t.Run(format, func(t *testing.T) {
			job, data := mb.f.export(t, export.Request{Selection: export.Selection{Mailbox: "Sales@Example.com"}, Format: format})
			st := job.Export
			if st.Messages != len(mb.records) || st.Missing != 1 || st.Parts < 1 || st.Size != int64(len(data)) {
				t.Errorf("job: %d messages, %d missing, %d parts saved, %d bytes", st.Messages, st.Missing, st.Parts, st.Size)
			}
			if format == export.FormatZip {
				mb.checkZip(t, data)
			} else {
				mb.checkMbox(t, data)
			}
		})
	}
}

// TestExportContinues stops an export after its first part, as an invocation whose time is up
// does, and fails one with S3 unavailable mid-part; the next invocations finish them, and the
// files are the very bytes of an export that ran through.
func TestExportContinues(t *testing.T) {
	mb := newMailbox(t)
	ctx := context.Background()
	for _, format := range []string{export.FormatMbox, export.FormatZip} {
		t.Run(format, func(t *testing.T) {
			_, whole := mb.f.export(t, export.Request{ID: "whole-" + format, Selection: export.Selection{Mailbox: "sales@example.com"}, Format: format})

			job, err := mb.f.exporter.Start(ctx, export.Request{ID: "stopped-" + format, Selection: export.Selection{Mailbox: "sales@example.com"}, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			job, err = mb.f.exporter.Run(ctx, job.ID, time.Now().Add(-time.Second))
			if err != nil || job.State != export.StateRunning || job.Export.Parts != 1 || job.Export.Messages == 0 {
				t.Fatalf("first invocation: %v, %s with %d parts, %d messages", err, job.State, job.Export.Parts, job.Export.Messages)
			}
			if _, err := mb.f.exporter.Link(ctx, job.ID); !fault.Is(err, fault.Conflict) {
				t.Errorf("a link to an unfinished export: %v", err)
			}
			if job, err = mb.f.exporter.Run(ctx, job.ID, time.Time{}); err != nil || job.State != export.StateDone {
				t.Fatalf("second invocation: %v, %s", err, job.State)
			}
			if got := mb.f.download(t, job.ID); !bytes.Equal(got, whole) {
				t.Errorf("the continued export (%d bytes) differs from the whole one (%d bytes)", len(got), len(whole))
			}

			// S3 fails for a message after the first part, three times: the invocation stops
			// with a transient error and the job stays running; a cut-off read is read again.
			late := mb.records[len(mb.records)-3]
			objects := &flaky{Objects: mb.f.store, failOpen: map[string]int{late.Key: 3}, cutRead: map[string]int{mb.records[2].Key: 1}}
			failing := *mb.f.exporter
			failing.Objects = objects
			job, err = failing.Start(ctx, export.Request{ID: "failed-" + format, Selection: export.Selection{Mailbox: "sales@example.com"}, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			job, err = failing.Run(ctx, job.ID, time.Time{})
			if !fault.Is(err, fault.Transient) || job.State != export.StateRunning || job.Export.Parts != 1 {
				t.Fatalf("with S3 failing: %v, %s with %d parts", err, job.State, job.Export.Parts)
			}
			if job, err = failing.Run(ctx, job.ID, time.Time{}); err != nil || job.State != export.StateDone {
				t.Fatalf("again: %v, %s", err, job.State)
			}
			if got := mb.f.download(t, job.ID); !bytes.Equal(got, whole) {
				t.Errorf("the export after failures (%d bytes) differs from the whole one (%d bytes)", len(got), len(whole))
			}

			// The upload is completed, but the answer is lost: the next invocation finds the
			// export there and records it done.
			lost := *mb.f.exporter
			lost.Uploads = &lostCompletion{Uploads: mb.f.store}
			job, err = lost.Start(ctx, export.Request{ID: "lost-" + format, Selection: export.Selection{Mailbox: "sales@example.com"}, Format: format})
			if err != nil {
				t.Fatal(err)
			}
			if job, err = lost.Run(ctx, job.ID, time.Time{}); !fault.Is(err, fault.Transient) || !job.Export.Completing {
				t.Fatalf("completion lost: %v, completing %v", err, job.Export.Completing)
			}
			if job, err = lost.Run(ctx, job.ID, time.Time{}); err != nil || job.State != export.StateDone {
				t.Fatalf("after the lost completion: %v, %s %s", err, job.State, job.Error)
			}
			if got := mb.f.download(t, job.ID); !bytes.Equal(got, whole) {
				t.Errorf("the export completed twice (%d bytes) differs from the whole one (%d bytes)", len(got), len(whole))
			}
		})
	}
}

// lostCompletion completes the first upload and then reports a failure, as when the answer is
// lost on the way back.
type lostCompletion struct {
	export.Uploads
	done bool
}

func (u *lostCompletion) CompleteUpload(ctx context.Context, key, uploadID string, etags []string) error {
	err := u.Uploads.CompleteUpload(ctx, key, uploadID, etags)
	if err == nil && !u.done {
		u.done = true
		return fault.New(fault.Transient, "test", "connection reset")
	}
	return err
}

func TestExportRequests(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		req   export.Request
		field string
	}{
		{"nothing named", export.Request{}, "selection"},
		{"two named", export.Request{Selection: export.Selection{Mailbox: "a@example.com", Group: "sales"}}, "selection"},
		{"bad format", export.Request{Selection: export.Selection{Mailbox: "a@example.com"}, Format: "pst"}, "format"},
		{"bad mailbox", export.Request{Selection: export.Selection{Mailbox: "nobody"}}, "mailbox"},
		{"end before start", export.Request{Selection: export.Selection{Mailbox: "a@example.com",
			From: time.Now(), To: time.Now().Add(-time.Hour)}}, "to"},
		{"search not wired", export.Request{Selection: export.Selection{Search: `{"sender":"a@example.com"}`}}, "search"},
		{"bad id", export.Request{ID: "../x", Selection: export.Selection{Mailbox: "a@example.com"}}, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.exporter.Start(ctx, tt.req)
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
				t.Errorf("error %v, want invalid %s", err, tt.field)
			}
		})
	}
	// The same request again is the same job; another with its id is refused.
	req := export.Request{ID: "again", Selection: export.Selection{Mailbox: "a@example.com"}}
	first, err := f.exporter.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := f.exporter.Start(ctx, req); err != nil || again.CreatedAt != first.CreatedAt {
		t.Errorf("the same request again: %v", err)
	}
	req.Format = export.FormatZip
	if _, err := f.exporter.Start(ctx, req); !fault.Is(err, fault.Conflict) {
		t.Errorf("another request with the id: %v, want Conflict", err)
	}
	// Another invocation holds the job: this one leaves it alone.
	held, err := f.exporter.Start(ctx, export.Request{ID: "held", Selection: export.Selection{Mailbox: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	held.Runner, held.LeaseUntil = "another", time.Now().Add(time.Hour)
	if err := f.exporter.Jobs.Save(ctx, &held, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.exporter.Run(ctx, "held", time.Time{}); !fault.Is(err, fault.Conflict) {
		t.Errorf("a job another invocation holds: %v, want Conflict", err)
	}
	// An empty mailbox exports an empty file in one request.
	job, data := f.export(t, export.Request{Selection: export.Selection{Mailbox: "empty@example.com"}, Format: export.FormatZip})
	if zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil || len(zr.File) != 0 || job.Export.UploadID != "" {
		t.Errorf("an empty export: %v, upload %q", err, job.Export.UploadID)
	}
}

// flaky is S3 failing: opens of some keys fail a number of times, reads of others are cut off.
type flaky struct {
	export.Objects
	mu       sync.Mutex
	failOpen map[string]int
	cutRead  map[string]int
}

func (f *flaky) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	f.mu.Lock()
	fail, cut := f.failOpen[key] > 0, f.cutRead[key] > 0
	if fail {
		f.failOpen[key]--
	} else if cut {
		f.cutRead[key]--
	}
	f.mu.Unlock()
	if fail {
		return nil, 0, fault.New(fault.Transient, "test", "S3 is unavailable")
	}
	body, size, err := f.Objects.Open(ctx, key)
	if err == nil && cut {
		body = &cutOff{ReadCloser: body, left: 1000}
	}
	return body, size, err
}

type cutOff struct {
	io.ReadCloser
	left int
}

func (c *cutOff) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= n
	return n, err
}

type fakeGroups map[string]directory.Group

func (g fakeGroups) Group(_ context.Context, id string) (directory.Group, error) {
	if gr, ok := g[id]; ok {
		return gr, nil
	}
	return directory.Group{}, fault.New(fault.NotFound, "test", "no group %q", id)
}

// TestExportGroupAndSearch exports a group's mail (what reached its addresses, and what its
// listing holds) and a search's result, through the archive search the admin API runs.
func TestExportGroupAndSearch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var want []string
	for i := range 6 {
		id := fmt.Sprintf("g%d", i)
		rec := archive.Record{ID: id, Source: "ses", Key: "archive/" + id + ".eml", RawKey: "inbound/" + id,
			ReceivedAt: at.Add(time.Duration(i) * time.Minute), ArchivedAt: at, EnvelopeFrom: "ana@example.org",
			Subject: fmt.Sprintf("message %d", i)}
		raw := message(i, 1000)
		switch i % 3 {
		case 0: // to the group's address
			rec.Recipients = []string{"Sales-Team@example.com"}
		case 1: // through the group, as the group's listing records it
			rec.Recipients, rec.Groups = []string{"ana@example.com"}, []string{"sales"}
		case 2: // both
			rec.Recipients, rec.Groups = []string{"sales-team@example.com"}, []string{"sales"}
		}
		if i == 5 {
			rec.Recipients, rec.Groups = []string{"other@example.com"}, nil
		} else {
			want = append(want, id)
		}
		rec.Size, rec.SHA256 = int64(len(raw)), sum(raw)
		if _, err := f.store.Put(ctx, rec.Key, bytes.NewReader(raw), int64(len(raw))); err != nil {
			t.Fatal(err)
		}
		if err := f.index.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(data []byte) []string {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, zf := range zr.File {
			out = append(out, zf.Name[strings.IndexByte(zf.Name, '-')+1:len(zf.Name)-len(".eml")])
		}
		return out
	}

	f.exporter.Groups = fakeGroups{"sales": {ID: "sales", Addresses: []string{"sales-team@example.com"}}}
	job, data := f.export(t, export.Request{Selection: export.Selection{Group: "sales"}, Format: export.FormatZip})
	if got := ids(data); !slices.Equal(got, want) || job.Export.Filename != "group-sales-"+job.CreatedAt.Format("2006-01-02")+".zip" {
		t.Errorf("group export: %v (%s), want %v", got, job.Export.Filename, want)
	}
	if _, err := f.exporter.Start(ctx, export.Request{Selection: export.Selection{Group: "nope"}}); !fault.Is(err, fault.NotFound) {
		t.Errorf("an unknown group: %v", err)
	}

	f.exporter.Search = export.SearchPages(&archive.Search{Index: f.index})
	_, data = f.export(t, export.Request{Selection: export.Selection{Search: `{"mailbox":"sales-team@example.com"}`}, Format: export.FormatZip})
	if got := ids(data); !slices.Equal(got, []string{"g3", "g2", "g0"}) { // as the search lists them: newest first
		t.Errorf("search export: %v", got)
	}
	if _, err := f.exporter.Start(ctx, export.Request{Selection: export.Selection{Search: `{"mailbox":"x@example.com","bogus":1}`}}); fault.FieldOf(err) != "search" {
		t.Errorf("a bad search: %v", err)
	}
}

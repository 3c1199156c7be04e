package export_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/mail/mailtest"
	"github.com/mailroom/mailroom/shared/mbox"
)

// TestCorpusRoundTrip imports an mbox made of every message of the team's corpus into a mailbox
// and exports the mailbox again, as an mbox and as a zip: both give back the same messages, by
// SHA-256. A corpus file saved with an mbox "From " line has it dropped (it is the old mailbox's
// envelope, not the message), and one without a final line end gains one, the one change mbox
// makes.
func TestCorpusRoundTrip(t *testing.T) {
	dir, err := mailtest.CorpusDir()
	if err != nil {
		t.Skipf("corpus not found: %v", err)
	}
	manifest, err := os.Open(filepath.Join(dir, "manifest.tsv"))
	if os.IsNotExist(err) {
		t.Skipf("no corpus at %s (set MAILROOM_CORPUS to run against one)", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer manifest.Close()

	var file bytes.Buffer
	w := mbox.NewWriter(&file)
	want := map[string]bool{}
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	files := 0
	sc := bufio.NewScanner(manifest)
	for line := 0; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), "\t")
		if line == 0 || len(cols) < 3 {
			continue // the column names
		}
		raw, err := os.ReadFile(filepath.Join(dir, cols[0]))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(raw, []byte("From ")) {
			if i := bytes.IndexByte(raw, '\n'); i >= 0 {
				raw = raw[i+1:]
			}
		}
		if _, err := w.WriteMessage(mbox.Envelope{Sender: "corpus@mailroom.test", Date: at.Add(time.Duration(files) * time.Minute)}, bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
		if len(raw) > 0 && raw[len(raw)-1] != '\n' {
			raw = append(raw, '\n')
		}
		want[sum(raw)] = true
		files++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d corpus messages, %d distinct, an mbox of %d bytes", files, len(want), file.Len())

	f := newFixture(t)
	ctx := context.Background()
	start := time.Now()
	rep, err := f.importer.Import(ctx, "corpus@example.com", bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("import in %v: %+v", time.Since(start).Round(time.Millisecond), struct{ Imported, Duplicates, Flagged, Failed int }{rep.Imported, rep.Duplicates, rep.Flagged, len(rep.Failed)})
	if rep.Imported != len(want) || rep.Imported+rep.Duplicates != files || len(rep.Failed) != 0 {
		t.Errorf("import report: %d imported, %d duplicates, failed %v; want %d imported of %d", rep.Imported, rep.Duplicates, rep.Failed, len(want), files)
	}

	for _, format := range []string{export.FormatMbox, export.FormatZip} {
		start := time.Now()
		job, data := f.export(t, export.Request{Selection: export.Selection{Mailbox: "corpus@example.com"}, Format: format})
		t.Logf("%s export in %v: %d messages, %d parts, %d bytes", format, time.Since(start).Round(time.Millisecond), job.Export.Messages, job.Export.Parts, len(data))
		if format == export.FormatMbox && !bytes.Equal(data, file.Bytes()) {
			// Received in the file's order with its envelopes, the messages make the same file.
			t.Errorf("the exported mbox (%d bytes) is not the imported one (%d bytes)", len(data), file.Len())
		}
		got := map[string]bool{}
		if format == export.FormatMbox {
			r := mbox.NewReader(bytes.NewReader(data))
			for {
				if _, err := r.Next(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				msg, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				got[sum(msg)] = true
			}
		} else {
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			for _, zf := range zr.File {
				rc, err := zf.Open()
				if err != nil {
					t.Fatal(err)
				}
				msg, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				got[sum(msg)] = true
			}
		}
		if !maps.Equal(got, want) {
			var missing, extra []string
			for s := range want {
				if !got[s] {
					missing = append(missing, s)
				}
			}
			for s := range got {
				if !want[s] {
					extra = append(extra, s)
				}
			}
			slices.Sort(missing)
			slices.Sort(extra)
			t.Errorf("%s export: %d messages, want %d; %d missing %.3v, %d not imported %.3v", format, len(got), len(want), len(missing), missing, len(extra), extra)
		}
	}
}

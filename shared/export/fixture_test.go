package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/s3store"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// fixture is an archive on the local stack (bucket, archive and state tables) with the export
// and import services wired to it as a function would wire them.
type fixture struct {
	clients  awsclient.Clients
	bucket   string
	archive  string // table
	state    string // table
	store    *s3store.Store
	index    *dynamo.ArchiveIndex
	archiver *archive.Service
	exporter *export.Service
	importer *export.Importer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, devstacktest.Clients(t))
}

func newFixtureWith(t testing.TB, clients awsclient.Clients) *fixture {
	t.Helper()
	f := &fixture{
		clients: clients,
		bucket:  devstacktest.Bucket(t, "MailBucket"),
		archive: devstacktest.Table(t, "ArchiveTable"),
		state:   devstacktest.Table(t, "StateTable"),
	}
	f.store = s3store.New(clients.S3, f.bucket)
	f.index = dynamo.NewArchiveIndex(clients.DynamoDB, f.archive)
	f.archiver = &archive.Service{Objects: f.store, Index: f.index, Prefix: "archive/", Now: time.Now}
	listings := dynamo.NewExportListings(clients.DynamoDB, f.archive)
	jobs := dynamo.NewJobs(clients.DynamoDB, f.state)
	f.exporter = &export.Service{
		Listings: listings, Records: listings, Objects: f.store, Uploads: f.store, Jobs: jobs,
		Links: f.store, Prefix: "exports/", PartSize: export.MinPartSize, Now: time.Now,
	}
	f.importer = &export.Importer{
		Archive: f.archiver, Index: f.index, Objects: f.store, Jobs: jobs, RawPrefix: "inbound/", Now: time.Now,
	}
	return f
}

// receive stores raw as SES would and archives it for the recipients.
func (f *fixture) receive(t testing.TB, id string, raw []byte, at time.Time, envelopeFrom string, recipients ...string) archive.Record {
	t.Helper()
	ctx := context.Background()
	if _, err := f.store.Put(ctx, "inbound/"+id, bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	res, err := f.archiver.Archive(ctx, archive.Received{ID: id, RawKey: "inbound/" + id, ReceivedAt: at,
		EnvelopeFrom: envelopeFrom, Recipients: recipients, Source: "ses"})
	if err != nil {
		t.Fatal(err)
	}
	return res.Record
}

// export runs an export to its end and downloads it through its link.
func (f *fixture) export(t testing.TB, req export.Request) (export.Job, []byte) {
	t.Helper()
	ctx := context.Background()
	job, err := f.exporter.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if job, err = f.exporter.Run(ctx, job.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if job.State != export.StateDone {
		t.Fatalf("export %s: %s %s", job.ID, job.State, job.Error)
	}
	return job, f.download(t, job.ID)
}

func (f *fixture) download(t testing.TB, id string) []byte {
	t.Helper()
	dl, err := f.exporter.Link(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(dl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", dl.URL, resp.Status, err)
	}
	if int64(len(body)) != dl.Size {
		t.Errorf("downloaded %d bytes; the job says %d", len(body), dl.Size)
	}
	return body
}

func deleteInput(bucket, key string) *s3.DeleteObjectInput {
	return &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// message is a well-formed message of about size bytes, unique by n: a short text and an
// attachment that compresses as little as real ones do.
func message(n, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Ana Lim <ana@example.org>\r\nTo: sales@example.com\r\nSubject: message %d\r\n", n)
	fmt.Fprintf(&b, "Date: Mon, 23 Nov 2026 09:%02d:00 +0800\r\nMessage-ID: <m%d@example.org>\r\n", n%60, n)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain\r\n\r\nMessage %d, with a report attached.\r\n--b\r\n", n)
	b.WriteString("Content-Type: application/octet-stream; name=report.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	raw := make([]byte, 57)
	line := make([]byte, base64.StdEncoding.EncodedLen(57))
	for b.Len() < size-80 {
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		base64.StdEncoding.Encode(line, raw)
		b.Write(line)
		b.WriteString("\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.Bytes()
}

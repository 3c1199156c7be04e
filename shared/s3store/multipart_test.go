package s3store_test

// TestMain (devstacktest.Main) is in delete_test.go: a test binary has one.

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/s3store"
)

// TestMultipartUpload writes an object in parts on the local S3 server, which holds parts to S3's
// 5 MiB minimum as S3 does, and reads it back whole and from an offset.
func TestMultipartUpload(t *testing.T) {
	ctx := context.Background()
	c := devstacktest.Clients(t).S3
	bucket := devstacktest.Bucket(t, "MailBucket")
	store := s3store.New(c, bucket)

	part1 := bytes.Repeat([]byte("0123456789abcdef"), s3store.MinPartSize/16)
	part2 := []byte("the last part may be small\n")
	key := "exports/job1.mbox"
	id, err := store.CreateUpload(ctx, key, "application/mbox", "ana@example.com-2026-11-23.mbox")
	if err != nil {
		t.Fatal(err)
	}
	e1, err := store.UploadPart(ctx, key, id, 1, part1)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := store.UploadPart(ctx, key, id, 2, part2)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CompleteUpload(ctx, key, id, []string{e1, e2}); err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(head.ContentDisposition), `attachment; filename="ana@example.com-2026-11-23.mbox"`; got != want {
		t.Errorf("Content-Disposition = %q, want %q", got, want)
	}
	if got := aws.ToString(head.ContentType); got != "application/mbox" {
		t.Errorf("Content-Type = %q", got)
	}
	whole := append(append([]byte(nil), part1...), part2...)
	for _, offset := range []int64{0, 5, int64(len(part1)), int64(len(whole))} {
		body, size, err := store.OpenAt(ctx, key, offset)
		if err != nil {
			t.Fatalf("OpenAt(%d): %v", offset, err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || !bytes.Equal(got, whole[offset:]) || size != int64(len(whole)) {
			t.Errorf("OpenAt(%d): %d bytes (want %d), size %d (want %d), %v", offset, len(got), len(whole)-int(offset), size, len(whole), err)
		}
	}

	// A part below the minimum, but the last, is refused at completion; the upload is then
	// aborted, and a gone upload is NotFound.
	id, err = store.CreateUpload(ctx, "exports/small", "application/zip", "")
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := store.UploadPart(ctx, "exports/small", id, 1, []byte("small"))
	s2, _ := store.UploadPart(ctx, "exports/small", id, 2, []byte("small"))
	if err := store.CompleteUpload(ctx, "exports/small", id, []string{s1, s2}); err == nil {
		t.Error("a first part under 5 MiB was accepted: the local server no longer checks what S3 checks")
	}
	if err := store.AbortUpload(ctx, "exports/small", id); err != nil {
		t.Fatal(err)
	}
	if err := store.AbortUpload(ctx, "exports/small", id); err != nil {
		t.Errorf("aborting again: %v", err)
	}
	if _, err := store.UploadPart(ctx, "exports/small", id, 3, []byte("x")); !fault.Is(err, fault.NotFound) {
		t.Errorf("a part of an aborted upload: %v, want NotFound", err)
	}

	if err := store.PutFile(ctx, "exports/one.zip", []byte("PK"), "application/zip", "one.zip"); err != nil {
		t.Fatal(err)
	}
	if link, err := store.Link(ctx, "exports/one.zip", time.Now().Add(time.Hour)); err != nil || link == "" {
		t.Errorf("Link: %q, %v", link, err)
	}
	if _, _, err := store.OpenAt(ctx, "exports/none", 0); !fault.Is(err, fault.NotFound) {
		t.Errorf("OpenAt of a missing object: %v, want NotFound", err)
	}
}

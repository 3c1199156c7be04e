package s3store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/s3store"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

func put(t *testing.T, c *s3.Client, bucket, key, body string, opts ...func(*s3.PutObjectInput)) string {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}
	for _, o := range opts {
		o(in)
	}
	out, err := c.PutObject(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

// versions lists every version and delete marker in the bucket as "key@n" (n counting them).
func versions(t *testing.T, c *s3.Client, bucket string) map[string]int {
	t.Helper()
	out := map[string]int{}
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			out[aws.ToString(v.Key)]++
		}
		for _, m := range page.DeleteMarkers {
			out[aws.ToString(m.Key)]++
		}
	}
	return out
}

// TestDeleteVersions deletes every version and delete marker of the keys asked for, and nothing
// else, whether a key shares its folder or is alone in it.
func TestDeleteVersions(t *testing.T) {
	ctx := context.Background()
	c := devstacktest.Clients(t).S3
	bucket := devstacktest.Bucket(t, "MailBucket")
	store := s3store.New(c, bucket)
	put(t, c, bucket, "archive/2025/01/02/a.eml", "one")
	put(t, c, bucket, "archive/2025/01/02/a.eml", "two")
	put(t, c, bucket, "archive/2025/01/02/b.eml", "b")
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("archive/2025/01/02/b.eml")}); err != nil {
		t.Fatal(err) // a delete marker on top of b's version
	}
	put(t, c, bucket, "archive/2025/01/02/c.eml", "kept")
	put(t, c, bucket, "archive/2025/01/02/z.eml", "kept, after the last key asked for")
	put(t, c, bucket, "archive/2025/01/03/d.eml", "alone in its folder")
	put(t, c, bucket, "archive/2025/01/03/d.eml.bak", "kept, though d's prefix")

	got, err := store.DeleteVersions(ctx, []string{"archive/2025/01/02/a.eml", "archive/2025/01/02/b.eml", "archive/2025/01/03/d.eml", "archive/2025/01/04/missing.eml", "archive/2025/01/02/a.eml"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"archive/2025/01/02/a.eml": 2, "archive/2025/01/02/b.eml": 2, "archive/2025/01/03/d.eml": 1, "archive/2025/01/04/missing.eml": 0}
	if len(got) != len(want) {
		t.Errorf("results for %d keys, want %d", len(got), len(want))
	}
	for k, n := range want {
		if r := got[k]; len(r.Versions) != n || r.Locked {
			t.Errorf("%s: %+v, want %d versions deleted", k, r, n)
		}
	}
	left := versions(t, c, bucket)
	if fmt.Sprint(left) != "map[archive/2025/01/02/c.eml:1 archive/2025/01/02/z.eml:1 archive/2025/01/03/d.eml.bak:1]" {
		t.Errorf("left in the bucket: %v", left)
	}
	// Again: nothing left to delete is no error.
	again, err := store.DeleteVersions(ctx, []string{"archive/2025/01/02/a.eml"})
	if err != nil || len(again["archive/2025/01/02/a.eml"].Versions) != 0 {
		t.Errorf("deleting again: %+v %v", again, err)
	}
}

func TestFirstDay(t *testing.T) {
	ctx := context.Background()
	c := devstacktest.Clients(t).S3
	bucket := devstacktest.Bucket(t, "MailBucket")
	store := s3store.New(c, bucket)
	if _, ok, err := store.FirstDay(ctx, "archive/"); ok || err != nil {
		t.Fatalf("empty archive: ok %v, err %v", ok, err)
	}
	put(t, c, bucket, "archive/2025/03/01/x.eml", "x")
	put(t, c, bucket, "archive/2024/11/30/y.eml", "y")
	put(t, c, bucket, "archive/2023/readme.txt", "a year with no month folder")
	put(t, c, bucket, "archive/2022/13x/01/z.eml", "not a month")
	put(t, c, bucket, "archive/notes/1999/01/01/n.eml", "not a year")
	put(t, c, bucket, "inbound/old", "not the archive")
	got, ok, err := store.FirstDay(ctx, "archive/")
	if err != nil || !ok || !got.Equal(time.Date(2024, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("FirstDay = %s %v %v, want 2024-11-30", got, ok, err)
	}
}

// TestDeleteVersionsObjectLock runs against a bucket with Object Lock (versitygw's POSIX
// backend keeps retention and legal holds): a version under a governance-mode retention or a legal
// hold is left and reported, with the date its retention ends; the job never bypasses it.
func TestDeleteVersionsObjectLock(t *testing.T) {
	ctx := context.Background()
	c := devstacktest.Clients(t).S3
	bucket := lockedBucket(t, c)
	store := s3store.New(c, bucket)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	put(t, c, bucket, "archive/2025/01/02/plain.eml", "p")
	put(t, c, bucket, "archive/2025/01/02/retained.eml", "old, unlocked")
	put(t, c, bucket, "archive/2025/01/02/retained.eml", "r", func(in *s3.PutObjectInput) {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, &until
	})
	put(t, c, bucket, "archive/2025/01/02/held.eml", "h", func(in *s3.PutObjectInput) {
		in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
	})
	got, err := store.DeleteVersions(ctx, []string{"archive/2025/01/02/plain.eml", "archive/2025/01/02/retained.eml", "archive/2025/01/02/held.eml"})
	if err != nil {
		t.Fatal(err)
	}
	if r := got["archive/2025/01/02/plain.eml"]; r.Locked || len(r.Versions) != 1 {
		t.Errorf("plain: %+v", r)
	}
	if r := got["archive/2025/01/02/retained.eml"]; !r.Locked || !r.LockedUntil.Equal(until) || len(r.Versions) != 1 {
		t.Errorf("retained: %+v, want locked until %s with its older, unlocked version deleted", r, until)
	}
	if r := got["archive/2025/01/02/held.eml"]; !r.Locked || !r.LockedUntil.IsZero() || len(r.Versions) != 0 {
		t.Errorf("held: %+v, want locked with no end", r)
	}
	left := versions(t, c, bucket)
	if fmt.Sprint(left) != "map[archive/2025/01/02/held.eml:1 archive/2025/01/02/retained.eml:1]" {
		t.Errorf("left: %v", left)
	}
}

// lockedBucket creates a versioned bucket with Object Lock for this test, and empties it after,
// lifting the legal holds and bypassing governance retention as its owner may.
func lockedBucket(t *testing.T, c *s3.Client) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	name := "locked-" + hex.EncodeToString(b)
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
			c.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: &name, Key: v.Key, VersionId: v.VersionId,
				LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff}, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
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

// Package devstacktest gives tests the real local DynamoDB, S3 and SES servers: the stack that
// `make test` shares through environment variables, or one started for the test binary, with a
// fresh table or bucket per test made from template.yaml.
package devstacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mailroom/mailroom/infra/devstack"
	"github.com/mailroom/mailroom/shared/awsclient"
)

var (
	mainCalled bool

	startOnce sync.Once
	stack     *devstack.Stack
	endpoints devstack.Endpoints
	startErr  error

	clientsOnce sync.Once
	clients     awsclient.Clients
	clientsErr  error

	templateOnce sync.Once
	template     *devstack.Template
	templateErr  error
)

// Main runs the package's tests; call it from TestMain:
//
//	func TestMain(m *testing.M) { devstacktest.Main(m) }
//
// Under `make test` the MAILROOM_* variables name a shared stack and every package uses it.
// Otherwise (plain `go test ./some/pkg`) this binary starts a stack of its own the first time a
// test asks for it, so unit tests that need no servers pay nothing, and stops it after the run.
func Main(m *testing.M) {
	mainCalled = true
	if ep, ok := devstack.EndpointsFromEnv(); ok {
		endpoints = ep
		// Variables left in a shell by a stack that has since stopped would otherwise fail
		// every test with "connection refused".
		startOnce.Do(func() { startErr = reachable(ep) })
	}
	code := m.Run()
	if stack != nil {
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devstacktest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

func reachable(ep devstack.Endpoints) error {
	for _, u := range []string{ep.DynamoDB, ep.S3} {
		host := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		c, err := net.DialTimeout("tcp", host, 2*time.Second)
		if err != nil {
			return fmt.Errorf("the stack named by %s and %s does not answer (%v): "+
				"start it again, or unset the MAILROOM_* variables to have the tests start their own", devstack.EnvDynamoDB, devstack.EnvS3, err)
		}
		c.Close()
	}
	return nil
}

func start(t testing.TB) devstack.Endpoints {
	t.Helper()
	if !mainCalled {
		t.Fatal("devstacktest: call devstacktest.Main(m) from the package's TestMain")
	}
	startOnce.Do(func() {
		// The servers outlive any one test, so they must not be bound to its context.
		ctx := context.Background()
		stack, startErr = devstack.Start(ctx, devstack.Options{
			WithSES: true,
			Log:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if startErr != nil {
			return
		}
		endpoints = stack.Endpoints()
		// Code under test that reads its configuration from the environment, and any command
		// a test runs, see the same stack as under `make test`.
		for _, kv := range stack.Env() {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
	})
	if startErr != nil {
		t.Fatalf("devstacktest: %v", startErr)
	}
	return endpoints
}

// Endpoints returns the stack's endpoints and credentials.
func Endpoints(t testing.TB) devstack.Endpoints {
	t.Helper()
	return start(t)
}

// Clients returns SDK clients for the stack, built once through awsclient and shared.
func Clients(t testing.TB) awsclient.Clients {
	t.Helper()
	ep := start(t)
	clientsOnce.Do(func() { clients, clientsErr = ep.Clients(context.Background()) })
	if clientsErr != nil {
		t.Fatalf("devstacktest: %v", clientsErr)
	}
	return clients
}

func loadTemplate(t testing.TB) *devstack.Template {
	t.Helper()
	templateOnce.Do(func() {
		root, err := devstack.FindRepoRoot()
		if err != nil {
			templateErr = err
			return
		}
		template, templateErr = devstack.LoadTemplate(filepath.Join(root, "template.yaml"))
	})
	if templateErr != nil {
		t.Fatalf("devstacktest: %v", templateErr)
	}
	return template
}

// Table creates a table for this test only, defined by the template's resource logicalID, and
// deletes it when the test ends. The name is unique across test binaries sharing a stack.
func Table(t testing.TB, logicalID string) string {
	t.Helper()
	c := Clients(t)
	name := uniqueName(logicalID, t.Name(), 255)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := loadTemplate(t).CreateTable(ctx, c.DynamoDB, logicalID, name); err != nil {
		t.Fatalf("devstacktest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
			t.Errorf("devstacktest: delete table %s: %v", name, err)
		}
	})
	return name
}

// Bucket creates a bucket for this test only, defined by the template's resource logicalID, and
// when the test ends deletes every object version, delete marker and unfinished upload in it, then
// the bucket. The name is unique across test binaries sharing a stack.
func Bucket(t testing.TB, logicalID string) string {
	t.Helper()
	c := Clients(t)
	name := uniqueName(logicalID, t.Name(), 63)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := loadTemplate(t).CreateBucket(ctx, c.S3, logicalID, name); err != nil {
		t.Fatalf("devstacktest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := emptyBucket(ctx, c.S3, name); err != nil {
			t.Errorf("devstacktest: empty bucket %s: %v", name, err)
			return
		}
		if _, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &name}); err != nil {
			t.Errorf("devstacktest: delete bucket %s: %v", name, err)
		}
	})
	return name
}

// emptyBucket deletes every unfinished upload, version and delete marker, bypassing
// governance-mode retention as the bucket's owner may.
func emptyBucket(ctx context.Context, c *s3.Client, bucket string) error {
	var errs []error
	uploads := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list uploads: %w", err)
		}
		for _, u := range page.Uploads {
			_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
			errs = append(errs, err)
		}
	}
	// Delete the first page of versions until none are left, rather than following the listing's
	// markers: a marker into a listing that is being deleted from is not reliable on every server.
	// A page holds at most 1000 versions and markers together, DeleteObjects' limit.
	for {
		page, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
		if err != nil {
			return fmt.Errorf("list versions: %w", err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			break
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &bucket, Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
			BypassGovernanceRetention: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("delete versions: %w", err)
		}
		if len(out.Errors) > 0 {
			for _, e := range out.Errors {
				errs = append(errs, fmt.Errorf("%s version %s: %s", aws.ToString(e.Key), aws.ToString(e.VersionId), aws.ToString(e.Message)))
			}
			break // the same page would come back again
		}
	}
	return errors.Join(errs...)
}

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName makes a table or bucket name from the logical id and test name, for a reader of the
// server's listing, and random bits, for uniqueness; it is lower case, so valid for both.
func uniqueName(logicalID, test string, max int) string {
	b := make([]byte, 6)
	rand.Read(b)
	suffix := "-" + hex.EncodeToString(b)
	stem := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(logicalID+"-"+test), "-"), "-")
	if room := max - len(suffix); len(stem) > room {
		stem = strings.TrimRight(stem[:room], "-")
	}
	return stem + suffix
}

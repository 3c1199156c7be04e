package awsclient_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/s3store"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

// The counter sees every attempt on the wire, retries included, which is what "AWS requests per
// message" must mean.
func TestRequestCounterCountsRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`)
			return
		}
		io.WriteString(w, `{"TableNames":[]}`)
	}))
	defer srv.Close()
	counter := &awsclient.RequestCounter{}
	c, err := awsclient.New(context.Background(), awsclient.Options{
		Region: "us-east-1", Endpoints: awsclient.Endpoints{DynamoDB: srv.URL},
		AccessKey: "k", SecretKey: "s", Counter: counter,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DynamoDB.ListTables(context.Background(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables after two server errors: %v (the SDK should have retried)", err)
	}
	if got := counter.Count(); got != 3 {
		t.Errorf("Count() = %d, want 3 (one call, two retries)", got)
	}
}

func TestNewRequiresRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	if _, err := awsclient.New(context.Background(), awsclient.Options{AccessKey: "k", SecretKey: "s"}); err == nil ||
		!strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("New without a region: error = %v, want one naming AWS_REGION", err)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRequest measures what one request costs this process in CPU, on the local servers, as
// deployed (GOMAXPROCS=1): the floor under every per-message figure in docs/benchmarks.md.
func BenchmarkRequest(b *testing.B) {
	ctx := context.Background()
	c := devstacktest.Clients(b)
	ep := devstacktest.Endpoints(b)
	table := devstacktest.Table(b, "ArchiveTable")
	store := s3store.New(c.S3, devstacktest.Bucket(b, "MailBucket"))
	if _, err := store.Put(ctx, "k", bytes.NewReader(make([]byte, 1024)), 1024); err != nil {
		b.Fatal(err)
	}
	key := map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "MSG#x"}, "SK": &types.AttributeValueMemberS{Value: "MSG"}}
	cases := []struct {
		name string
		do   func() error
	}{
		{"plain-http-post", func() error {
			resp, err := http.Post(ep.DynamoDB, "application/x-amz-json-1.0", strings.NewReader("{}"))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return err
		}},
		{"sdk-dynamodb-getitem", func() error {
			_, err := c.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key})
			return err
		}},
		{"sdk-s3-getobject-1KB", func() error {
			rc, _, err := store.Open(ctx, "k")
			if err == nil {
				io.Copy(io.Discard, rc)
				rc.Close()
			}
			return err
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := tc.do(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
		})
	}
}

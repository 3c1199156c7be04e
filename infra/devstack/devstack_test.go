package devstack_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mailroom/mailroom/infra/devstack"
	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
)

func TestMain(m *testing.M) { devstacktest.Main(m) }

func templatePath(t *testing.T) string {
	t.Helper()
	root, err := devstack.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "template.yaml")
}

func TestFindRepoRoot(t *testing.T) {
	root, err := devstack.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got, want := filepath.Join(root, "infra", "devstack"), wd; got != want {
		t.Errorf("root/infra/devstack = %s, want the package directory %s", got, want)
	}
}

func TestEnvRoundTrip(t *testing.T) {
	want := devstack.Endpoints{
		DynamoDB: "http://127.0.0.1:1", S3: "http://127.0.0.1:2", SES: "http://127.0.0.1:3",
		Region: "eu-west-1", AccessKey: "ak", SecretKey: "sk",
	}
	for _, kv := range want.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	got, ok := devstack.EndpointsFromEnv()
	if !ok || got != want {
		t.Errorf("EndpointsFromEnv() = %+v, %v; want %+v, true", got, ok, want)
	}
	t.Setenv(devstack.EnvS3, "")
	if _, ok := devstack.EndpointsFromEnv(); ok {
		t.Error("EndpointsFromEnv() ok without an S3 endpoint")
	}
}

// TestLoopbackOnly checks that no server of the stack can be reached from the network: every
// listening socket on their ports is bound to a loopback address, and connecting through each of
// this machine's other addresses fails.
func TestLoopbackOnly(t *testing.T) {
	ep := devstacktest.Endpoints(t)
	servers := map[string]string{"DynamoDB": ep.DynamoDB, "S3": ep.S3, "SES": ep.SES}
	var others []net.IP
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			others = append(others, ipn.IP)
		}
	}
	t.Logf("non-loopback addresses: %v", others)
	for name, endpoint := range servers {
		if endpoint == "" {
			t.Errorf("%s: no endpoint", name)
			continue
		}
		u, err := url.Parse(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(u.Port())
		if host := u.Hostname(); host != "127.0.0.1" {
			t.Errorf("%s endpoint %s: host %s, want 127.0.0.1", name, endpoint, host)
		}
		if listeners, err := procListeners(port); err == nil {
			if len(listeners) == 0 {
				t.Errorf("%s: no listening socket on port %d in /proc/net/tcp*", name, port)
			}
			for _, ip := range listeners {
				if !ip.IsLoopback() {
					t.Errorf("%s: port %d listens on %s", name, port, ip)
				}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Error(err)
		}
		for _, ip := range others {
			addr := net.JoinHostPort(ip.String(), u.Port())
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s: reachable at %s", name, addr)
			}
		}
	}
}

// procListeners returns the local addresses of the listening TCP sockets on port.
func procListeners(port int) ([]net.IP, error) {
	var ips []net.IP
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			if p, _ := strconv.ParseUint(hexPort, 16, 16); int(p) != port {
				continue
			}
			raw, err := hex.DecodeString(hexIP)
			if err != nil {
				fh.Close()
				return nil, err
			}
			// The kernel prints each 32-bit word in host (little-endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				slices.Reverse(raw[i : i+4])
			}
			ips = append(ips, net.IP(raw))
		}
		fh.Close()
	}
	return ips, nil
}

func TestTableFromTemplate(t *testing.T) {
	tmpl, err := devstack.LoadTemplate(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	def, err := tmpl.Table("ArchiveTable")
	if err != nil {
		t.Fatal(err)
	}
	name := devstacktest.Table(t, "ArchiveTable")
	c := devstacktest.Clients(t)
	ctx := t.Context()
	out, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	tb := out.Table

	var wantKeys []string
	for _, k := range def.KeySchema {
		wantKeys = append(wantKeys, k.AttributeName+" "+k.KeyType)
	}
	if got := keys(tb.KeySchema); !slices.Equal(got, wantKeys) {
		t.Errorf("key schema = %v, want %v", got, wantKeys)
	}
	if got, want := string(tb.BillingModeSummary.BillingMode), aws.ToString(def.BillingMode); got != want {
		t.Errorf("billing mode = %s, want %s", got, want)
	}
	if aws.ToBool(tb.DeletionProtectionEnabled) {
		t.Error("deletion protection is on; the local stack must leave it off")
	}

	want := map[string]string{}
	for _, g := range def.GlobalSecondaryIndexes {
		var k []string
		for _, e := range g.KeySchema {
			k = append(k, e.AttributeName+" "+e.KeyType)
		}
		attrs := slices.Clone(g.Projection.NonKeyAttributes)
		sort.Strings(attrs)
		want[g.IndexName] = fmt.Sprint(k, " ", aws.ToString(g.Projection.ProjectionType), " ", attrs)
	}
	if len(want) == 0 {
		t.Fatal("template's ArchiveTable has no global secondary indexes; this test expects some")
	}
	got := map[string]string{}
	for _, g := range tb.GlobalSecondaryIndexes {
		attrs := slices.Clone(g.Projection.NonKeyAttributes)
		sort.Strings(attrs)
		got[aws.ToString(g.IndexName)] = fmt.Sprint(keys(g.KeySchema), " ", g.Projection.ProjectionType, " ", attrs)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("global secondary indexes:\n got %v\nwant %v", got, want)
	}

	ttl, err := c.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	d := ttl.TimeToLiveDescription
	if d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != aws.ToString(def.TimeToLiveSpecification.AttributeName) {
		t.Errorf("time to live = %s on %q, want ENABLED on %q", d.TimeToLiveStatus, aws.ToString(d.AttributeName), aws.ToString(def.TimeToLiveSpecification.AttributeName))
	}

	// Creating it again (a dev stack restarting) keeps it.
	if err := tmpl.CreateTable(ctx, c.DynamoDB, "ArchiveTable", name); err != nil {
		t.Errorf("CreateTable on an existing table: %v", err)
	}
}

func keys(ks []ddbtypes.KeySchemaElement) []string {
	var out []string
	for _, k := range ks {
		out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return out
}

// TestTableDrift checks that an existing table is given the indexes the template has added since,
// and that a table whose keys differ is reported rather than used.
func TestTableDrift(t *testing.T) {
	t.Parallel() // DynamoDB Local takes about a second to build each index
	tmpl, err := devstack.LoadTemplate(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	c := devstacktest.Clients(t)
	ctx := t.Context()
	create := func(name string, hashKey string) {
		t.Helper()
		_, err := c.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            &name,
			BillingMode:          ddbtypes.BillingModePayPerRequest,
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: &hashKey, AttributeType: ddbtypes.ScalarAttributeTypeS}, {AttributeName: aws.String("SK"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: &hashKey, KeyType: ddbtypes.KeyTypeHash}, {AttributeName: aws.String("SK"), KeyType: ddbtypes.KeyTypeRange}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name})
		})
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)

	old := "drift-old-" + suffix
	create(old, "PK")
	if err := tmpl.CreateTable(ctx, c.DynamoDB, "ArchiveTable", old); err != nil {
		t.Fatalf("CreateTable over a table without indexes: %v", err)
	}
	out, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &old})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.Table.GlobalSecondaryIndexes); n != 3 {
		t.Errorf("after reconciling: %d global secondary indexes, want 3", n)
	}

	wrong := "drift-keys-" + suffix
	create(wrong, "pk")
	err = tmpl.CreateTable(ctx, c.DynamoDB, "ArchiveTable", wrong)
	if err == nil || !strings.Contains(err.Error(), "key schema") {
		t.Errorf("CreateTable over a table with other keys: err = %v, want a key schema difference", err)
	}
}

func TestBucketFromTemplate(t *testing.T) {
	c := devstacktest.Clients(t)
	ctx := t.Context()
	var name string
	t.Run("roundtrip", func(t *testing.T) {
		name = devstacktest.Bucket(t, "MailBucket")
		if name != strings.ToLower(name) || len(name) > 63 {
			t.Errorf("bucket name %q: want lower case, at most 63 characters", name)
		}
		v, err := c.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &name})
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != s3types.BucketVersioningStatusEnabled {
			t.Fatalf("versioning = %q, want Enabled", v.Status)
		}
		key := "inbound/message-1"
		var ids []string
		for _, body := range []string{"first", "second"} {
			out, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &name, Key: &key, Body: strings.NewReader(body)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, aws.ToString(out.VersionId))
		}
		if got := getObject(t, c.S3, name, key, ""); got != "second" {
			t.Errorf("latest = %q, want second", got)
		}
		if got := getObject(t, c.S3, name, key, ids[0]); got != "first" {
			t.Errorf("version %s = %q, want first", ids[0], got)
		}
		lv, err := c.S3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &name})
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, v := range lv.Versions {
			listed = append(listed, aws.ToString(v.VersionId))
		}
		sort.Strings(listed)
		sort.Strings(ids)
		if !slices.Equal(listed, ids) {
			t.Errorf("versions listed = %v, want %v", listed, ids)
		}
		// A delete marker, which cleanup must remove too.
		if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &name, Key: &key}); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		return
	}
	_, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &name})
	var nf *s3types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("after the test's cleanup, HeadBucket = %v, want NotFound", err)
	}
}

func getObject(t *testing.T, c *s3.Client, bucket, key, version string) string {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: &bucket, Key: &key}
	if version != "" {
		in.VersionId = &version
	}
	out, err := c.GetObject(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// otherTemplate uses what the project's template does not yet: provisioned throughput, local
// secondary indexes, streams, Object Lock with a default retention, and parameters.
const otherTemplate = `
Parameters:
  Reads: {Type: Number, Default: 7}
Resources:
  ProvisionedTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-ignored"
      ProvisionedThroughput: {ReadCapacityUnits: !Ref Reads, WriteCapacityUnits: 3}
      AttributeDefinitions:
        - {AttributeName: PK, AttributeType: S}
        - {AttributeName: SK, AttributeType: S}
        - {AttributeName: date, AttributeType: S}
      KeySchema:
        - {AttributeName: PK, KeyType: HASH}
        - {AttributeName: SK, KeyType: RANGE}
      LocalSecondaryIndexes:
        - IndexName: ByDate
          KeySchema:
            - {AttributeName: PK, KeyType: HASH}
            - {AttributeName: date, KeyType: RANGE}
          Projection: {ProjectionType: ALL}
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
      WarmThroughput: {ReadUnitsPerSecond: 12000}
  LockedBucket:
    Type: AWS::S3::Bucket
    Properties:
      ObjectLockEnabled: true
      ObjectLockConfiguration:
        ObjectLockEnabled: Enabled
        Rule:
          DefaultRetention: {Mode: GOVERNANCE, Days: 1}
      VersioningConfiguration: {Status: Enabled}
`

// TestOtherProperties creates resources from otherTemplate. The table also carries a property
// newer than goformation (WarmThroughput), which must not stop the stack.
func TestOtherProperties(t *testing.T) {
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(otherTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := devstack.LoadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	c := devstacktest.Clients(t)
	ctx := t.Context()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)

	table := "other-" + suffix
	if err := tmpl.CreateTable(ctx, c.DynamoDB, "ProvisionedTable", table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table})
	})
	out, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	tb := out.Table
	if got := aws.ToInt64(tb.ProvisionedThroughput.ReadCapacityUnits); got != 7 {
		t.Errorf("read capacity = %d, want 7 (the parameter's default)", got)
	}
	if len(tb.LocalSecondaryIndexes) != 1 || aws.ToString(tb.LocalSecondaryIndexes[0].IndexName) != "ByDate" ||
		tb.LocalSecondaryIndexes[0].Projection.ProjectionType != ddbtypes.ProjectionTypeAll {
		t.Errorf("local secondary indexes = %+v, want ByDate projecting ALL", tb.LocalSecondaryIndexes)
	}
	if s := tb.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != ddbtypes.StreamViewTypeNewAndOldImages {
		t.Errorf("stream = %+v, want NEW_AND_OLD_IMAGES", s)
	}

	bucket := "locked-" + suffix
	if err := tmpl.CreateBucket(ctx, c.S3, "LockedBucket", bucket); err != nil {
		t.Fatal(err)
	}
	lock, err := c.S3.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	cfg := lock.ObjectLockConfiguration
	if cfg.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled || cfg.Rule == nil || cfg.Rule.DefaultRetention == nil ||
		cfg.Rule.DefaultRetention.Mode != s3types.ObjectLockRetentionModeGovernance || aws.ToInt32(cfg.Rule.DefaultRetention.Days) != 1 {
		t.Errorf("object lock = %+v, want enabled, GOVERNANCE for 1 day", cfg)
	}
	// A locked version goes only with governance bypass, which devstacktest's cleanup relies on.
	put, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("held"), Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	del := &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("held"), VersionId: put.VersionId}
	if _, err := c.S3.DeleteObject(ctx, del); err == nil {
		t.Error("deleted a version under governance retention without bypass")
	}
	del.BypassGovernanceRetention = aws.Bool(true)
	if _, err := c.S3.DeleteObject(ctx, del); err != nil {
		t.Errorf("delete with governance bypass: %v", err)
	}
	if _, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Errorf("delete bucket: %v", err)
	}
}

func TestTemplateErrors(t *testing.T) {
	tmpl, err := devstack.LoadTemplate(templatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Table("MailBucket"); err == nil {
		t.Error("Table(MailBucket): no error for a bucket")
	}
	if _, err := tmpl.Bucket("NoSuchThing"); err == nil {
		t.Error("Bucket(NoSuchThing): no error")
	}
	if _, err := devstack.LoadTemplate(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("LoadTemplate of a missing file: no error")
	}
}

// TestPersistedStack starts a dev-style stack on disk, checks what Running reports while it runs
// and after it stops, and restarts it to find its table, item and object again.
func TestPersistedStack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := devstack.Options{StateDir: dir, Persist: true, WithSES: true, Resources: devstack.DevResources(), Log: quietLog()}
	ctx := t.Context()
	begin := time.Now()
	s, err := devstack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("persisted stack started in %v", time.Since(begin).Round(time.Millisecond))
	defer s.Stop()

	ep, ok := devstack.Running(dir)
	if !ok || ep != s.Endpoints() {
		t.Fatalf("Running = %+v, %v; want %+v, true", ep, ok, s.Endpoints())
	}
	if _, err := devstack.Start(ctx, o); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Start on the same state: err = %v, want already running", err)
	}
	c, err := ep.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	item := map[string]ddbtypes.AttributeValue{
		"PK": &ddbtypes.AttributeValueMemberS{Value: "m#1"}, "SK": &ddbtypes.AttributeValueMemberS{Value: "meta"},
	}
	if _, err := c.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("mailroom-archive"), Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mailroom-mail"), Key: aws.String("archive/1.eml"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}

	state, err := os.ReadFile(filepath.Join(dir, devstack.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ PIDs map[string]int }
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.PIDs) != 3 {
		t.Errorf("stack.json pids = %v, want dynamodb, s3 and mailroom", st.PIDs)
	}

	if err := s.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for name, pid := range st.PIDs {
		if name == "mailroom" {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) after Stop: kill(0) = %v, want ESRCH", name, pid, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, devstack.StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stack.json after Stop: %v, want it removed", err)
	}
	// A state file left by a stack that died is not a running stack.
	if err := os.WriteFile(filepath.Join(dir, devstack.StateFile), state, 0o600); err != nil {
		t.Fatal(err)
	}
	if ep, ok := devstack.Running(dir); ok {
		t.Errorf("Running after Stop = %+v, true; want false", ep)
	}

	// Restart on the same state: resources are kept, creation is idempotent.
	s2, err := devstack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	c2, err := s2.Endpoints().Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c2.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("mailroom-archive"), Key: item})
	if err != nil || len(got.Item) == 0 {
		t.Errorf("item after restart: %v, %v", got, err)
	}
	if body := getObject(t, c2.S3, "mailroom-mail", "archive/1.eml", ""); body != "kept" {
		t.Errorf("object after restart = %q, want kept", body)
	}
	if err := s2.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

var runChild = flag.String("devstack.runchild", "", "internal: run as TestRun's child, writing this marker file")

// TestRun runs this test binary as Run's command: the child checks the variables and talks to the
// stack, writes a marker, and waits; cancelling Run's context relays SIGTERM, on which the child
// exits 7, and Run must return 7.
func TestRun(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := devstack.Run(ctx, devstack.Options{Log: quietLog()},
			[]string{os.Args[0], "-test.run=^TestRunChild$", "-devstack.runchild=" + marker})
		done <- result{code, err}
	}()
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("Run returned %d, %v before the child was ready", r.code, r.err)
		case <-deadline:
			t.Fatal("child never became ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	r := <-done
	if r.err != nil || r.code != 7 {
		t.Errorf("Run = %d, %v; want 7, nil", r.code, r.err)
	}
}

func TestRunChild(t *testing.T) {
	if *runChild == "" {
		t.Skip("only runs as TestRun's child")
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "run child: "+format+"\n", args...)
		os.Exit(2)
	}
	ep, ok := devstack.EndpointsFromEnv()
	if !ok {
		fail("no stack in the environment")
	}
	if got := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"); got != ep.DynamoDB {
		fail("AWS_ENDPOINT_URL_DYNAMODB = %q, want %q", got, ep.DynamoDB)
	}
	c, err := ep.Clients(t.Context())
	if err != nil {
		fail("%v", err)
	}
	if _, err := c.DynamoDB.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
		fail("ListTables: %v", err)
	}
	if _, err := c.S3.ListBuckets(t.Context(), &s3.ListBucketsInput{}); err != nil {
		fail("ListBuckets: %v", err)
	}
	if err := os.WriteFile(*runChild, nil, 0o644); err != nil {
		fail("%v", err)
	}
	select {
	case <-term:
		os.Exit(7)
	case <-time.After(time.Minute):
		fail("no SIGTERM")
	}
}

var orphanChild = flag.String("devstack.orphanchild", "", "internal: run as TestServersDieWithParent's child, with this state directory")

// TestServersDieWithParent kills a process that started a stack, without letting it stop the
// stack, and checks that the kernel ends the servers too.
func TestServersDieWithParent(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs Linux (Pdeathsig and /proc)")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanChild$", "-devstack.orphanchild="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var st struct{ PIDs map[string]int }
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := os.ReadFile(filepath.Join(dir, devstack.StateFile))
		if err == nil && json.Unmarshal(b, &st) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never wrote stack.json")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, name := range []string{"dynamodb", "s3"} {
		pid := st.PIDs[name]
		deadline := time.Now().Add(10 * time.Second)
		for running(pid) {
			if time.Now().After(deadline) {
				t.Errorf("%s (pid %d) still running after its parent was killed", name, pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// running reports whether pid exists and is not a zombie waiting for a reaper.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestOrphanChild(t *testing.T) {
	if *orphanChild == "" {
		t.Skip("only runs as TestServersDieWithParent's child")
	}
	if _, err := devstack.Start(t.Context(), devstack.Options{StateDir: *orphanChild, Log: quietLog()}); err != nil {
		fmt.Fprintln(os.Stderr, "orphan child:", err)
		os.Exit(2)
	}
	time.Sleep(2 * time.Minute) // until killed
	os.Exit(3)
}

package smtpingress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/s3store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	fixedNow = time.Date(2026, 3, 2, 9, 15, 30, 123_000_000, time.UTC)
	fixedID  = "o3vrnil0e2ic28trm7dfhrc2v0clambda4nbp0g1"
)

// objects is an in-memory Objects.
type objects struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (o *objects) Put(_ context.Context, key string, body io.Reader, size int64) (s3store.Object, error) {
	// The S3 SDK has to seek the body to sign it over plain HTTP, as on the local stack.
	if _, ok := body.(io.Seeker); !ok {
		return s3store.Object{}, errors.New("body is not seekable")
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return s3store.Object{}, err
	}
	if int64(len(b)) != size {
		return s3store.Object{}, fmt.Errorf("size %d, body has %d bytes", size, len(b))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string][]byte{}
	}
	o.m[key] = b
	return s3store.Object{Key: key, Size: size}, nil
}

func (o *objects) get(key string) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.m[key]
	return b, ok
}

func (o *objects) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// handler records the events it is invoked with; fail decides each call's outcome.
type handler struct {
	mu     sync.Mutex
	events []events.SimpleEmailEvent
	fail   func(call int) error
}

func (h *handler) invoke(_ context.Context, ev events.SimpleEmailEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
	if h.fail != nil {
		return h.fail(len(h.events))
	}
	return nil
}

func (h *handler) calls() []events.SimpleEmailEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]events.SimpleEmailEvent(nil), h.events...)
}

// logs is a log destination safe to read while the server writes to it.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	in      *Ingress
	objects *objects
	handler *handler
	logs    *logs
}

// newFixture builds an Ingress for example.com with a fixed clock and id; edit adjusts the config.
func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	f := &fixture{objects: &objects{}, handler: &handler{}, logs: &logs{}}
	cfg := Config{
		Domains:    []string{"example.com"},
		Objects:    f.objects,
		Invoke:     f.handler.invoke,
		Bucket:     "mailroom-local",
		Now:        func() time.Time { return fixedNow },
		NewID:      func() string { return fixedID },
		RetryDelay: time.Millisecond,
		Log:        slog.New(slog.NewTextHandler(f.logs, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	in, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	f.in = in
	return f
}

// sample is a message as a mail client sends it: CRLF, folded fields, encoded words in two
// charsets, a display name with a comma, and a body line that SMTP dot-stuffs.
const sample = "Received: from laptop.example.net (laptop.example.net [198.51.100.7])\r\n" +
	"\tby mail.example.net with ESMTPSA id 4Zx1Qk; Mon, 2 Mar 2026 09:15:29 +0000\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel1;\r\n" +
	"\th=from:to:cc:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n" +
	"\tb=dGVzdA==\r\n" +
	"From: \"Doe, Jane\" <jane@example.net>\r\n" +
	"To: sales@example.com, \"Support Team\" <support@eu.example.com>\r\n" +
	"Cc: =?UTF-8?Q?Zo=C3=AB_Tan?= <zoe@example.org>, bob@example.org\r\n" +
	"Subject: Re: =?GB2312?B?0a+82w==?= for the\r\n =?ISO-8859-1?Q?r=E9sum=E9?= files\r\n" +
	"Date: Mon, 2 Mar 2026 17:15:28 +0800\r\n" +
	"Message-ID: <20260302091528.4Zx1Qk@mail.example.net>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"\r\n" +
	"Hello,\r\n" +
	".a line that starts with a dot\r\n" +
	"Jane\r\n"

func TestReceiveGolden(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*Config)
		from       string
		recipients []string
	}{
		{name: "one-recipient", from: "jane@example.net", recipients: []string{"sales@example.com"}},
		{
			name: "dmarc-fail",
			edit: func(c *Config) {
				c.Verdicts = Verdicts{SPF: Fail, DKIM: Fail, DMARC: Fail, DMARCPolicy: "reject", Spam: Gray}
				c.Region, c.AccountID, c.FunctionName = "eu-west-1", "123456789012", "mailroom-InboundFunction"
			},
			from:       "jane@example.net",
			recipients: []string{"sales@example.com", "support@eu.example.com"},
		},
		{name: "bounce", from: "", recipients: []string{"sales@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.edit)
			rc, err := f.in.Receive(context.Background(), tt.from, tt.recipients, strings.NewReader(sample))
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if rc.InvokeErr != nil {
				t.Fatalf("InvokeErr: %v", rc.InvokeErr)
			}
			if got, want := rc.Key, "inbound/"+fixedID; got != want {
				t.Errorf("Key = %q, want %q", got, want)
			}
			stored, ok := f.objects.get(rc.Key)
			if !ok {
				t.Fatalf("nothing stored under %s", rc.Key)
			}
			golden(t, tt.name+".eml", stored)

			js, err := MarshalEvent(rc.Event)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, js, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden(t, tt.name+".event.json", pretty.Bytes())

			if got := f.handler.calls(); len(got) != 1 || !reflect.DeepEqual(got[0], rc.Event) {
				t.Errorf("handler got %d events, want exactly Receipt.Event", len(got))
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// The golden events must decode with the events types refusing unknown fields: a field SES does
// not send would fail here. Decoding, encoding again and comparing proves the round trip.
func TestGoldenEventsAreSESShaped(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.event.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden events: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			var ev events.SimpleEmailEvent
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("decode with events.SimpleEmailEvent: %v", err)
			}
			again, err := MarshalEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			json.Unmarshal(raw, &a)
			json.Unmarshal(again, &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("round trip changed the event\ngot:  %s\nwant: %s", again, raw)
			}
		})
	}
}

// Every field the SES Lambda action sends is present, with SES's values for a message received
// with the default verdicts.
func TestEventFields(t *testing.T) {
	f := newFixture(t, nil)
	rc, err := f.in.Receive(context.Background(), "jane@example.net", []string{"sales@example.com"}, strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := MarshalEvent(rc.Event)
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want any
	}{
		{"Records.0.eventSource", "aws:ses"},
		{"Records.0.eventVersion", "1.0"},
		{"Records.0.ses.mail.timestamp", "2026-03-02T09:15:30.123Z"},
		{"Records.0.ses.mail.source", "jane@example.net"},
		{"Records.0.ses.mail.messageId", fixedID},
		{"Records.0.ses.mail.destination", []any{"sales@example.com"}},
		{"Records.0.ses.mail.headersTruncated", false},
		{"Records.0.ses.mail.headers.0.name", "Return-Path"},
		{"Records.0.ses.mail.headers.0.value", "<jane@example.net>"},
		{"Records.0.ses.mail.headers.1.name", "Received"},
		{"Records.0.ses.mail.headers.1.value", "from localhost (localhost [127.0.0.1]) by inbound-smtp.us-east-1.amazonaws.com with SMTP id " + fixedID + " for sales@example.com; Mon, 02 Mar 2026 09:15:30 +0000 (UTC)"},
		{"Records.0.ses.mail.headers.2.name", "X-SES-Spam-Verdict"},
		{"Records.0.ses.mail.headers.3.name", "X-SES-Virus-Verdict"},
		{"Records.0.ses.mail.headers.4.name", "Received-SPF"},
		{"Records.0.ses.mail.headers.5.name", "Authentication-Results"},
		{"Records.0.ses.mail.headers.6.name", "X-SES-RECEIPT"},
		{"Records.0.ses.mail.headers.7.name", "Received"},
		{"Records.0.ses.mail.headers.8.name", "DKIM-Signature"},
		{"Records.0.ses.mail.headers.14.name", "Message-ID"},
		{"Records.0.ses.mail.commonHeaders.returnPath", "jane@example.net"},
		{"Records.0.ses.mail.commonHeaders.from", []any{`"Doe, Jane" <jane@example.net>`}},
		{"Records.0.ses.mail.commonHeaders.to", []any{"sales@example.com", `"Support Team" <support@eu.example.com>`}},
		{"Records.0.ses.mail.commonHeaders.cc", []any{"=?UTF-8?Q?Zo=C3=AB_Tan?= <zoe@example.org>", "bob@example.org"}},
		{"Records.0.ses.mail.commonHeaders.date", "Mon, 2 Mar 2026 17:15:28 +0800"},
		{"Records.0.ses.mail.commonHeaders.messageId", "<20260302091528.4Zx1Qk@mail.example.net>"},
		{"Records.0.ses.mail.commonHeaders.subject", "Re: 询价 for the résumé files"},
		{"Records.0.ses.receipt.timestamp", "2026-03-02T09:15:30.123Z"},
		{"Records.0.ses.receipt.processingTimeMillis", 0.0},
		{"Records.0.ses.receipt.recipients", []any{"sales@example.com"}},
		{"Records.0.ses.receipt.spamVerdict.status", "PASS"},
		{"Records.0.ses.receipt.virusVerdict.status", "PASS"},
		{"Records.0.ses.receipt.spfVerdict.status", "GRAY"},
		{"Records.0.ses.receipt.dkimVerdict.status", "GRAY"},
		{"Records.0.ses.receipt.dmarcVerdict.status", "GRAY"},
		{"Records.0.ses.receipt.dmarcPolicy", nil}, // only when DMARC fails
		{"Records.0.ses.receipt.action.type", "Lambda"},
		{"Records.0.ses.receipt.action.functionArn", "arn:aws:lambda:us-east-1:000000000000:function:mailroom-inbound"},
		{"Records.0.ses.receipt.action.invocationType", "Event"},
	}
	for _, tt := range tests {
		if got := lookup(doc, tt.path); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.path, got, tt.want)
		}
	}
}

// lookup follows a dotted path of object keys and array indexes; nil when absent.
func lookup(doc any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}

// What arrived is stored byte for byte under SES's headers, whose line endings follow the
// message's own.
func TestReceiveKeepsBytes(t *testing.T) {
	tests := []struct {
		name, raw, eol string
	}{
		{"crlf", sample, "\r\n"},
		{"bare-lf", strings.ReplaceAll(sample, "\r\n", "\n"), "\n"},
		{"bare-cr, as old Mac mail", strings.ReplaceAll(sample, "\r\n", "\r"), "\r"},
		{"mixed, first line decides", "From: a@example.net\nSubject: x\r\n\r\nbody\n", "\n"},
		{"no header", "\r\njust a body\r\n", "\r\n"},
		{"no final newline", "Subject: hi\r\n\r\nbody", "\r\n"},
		{"empty", "", "\r\n"},
		{"8-bit and NUL", "Subject: caf\xe9\r\n\r\n\x00\xff\xfe\r\n", "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rc, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := f.objects.get(rc.Key)
			if !bytes.HasSuffix(stored, []byte(tt.raw)) {
				t.Fatalf("stored message does not end with the bytes received:\n%q", stored)
			}
			head := string(stored[:len(stored)-len(tt.raw)])
			if !strings.HasPrefix(head, "Return-Path: <a@example.net>"+tt.eol+"Received: from ") {
				t.Errorf("stored message starts %q", head[:min(len(head), 60)])
			}
			terminators := strings.Count(head, "\n") + strings.Count(strings.ReplaceAll(head, "\r\n", ""), "\r")
			if got, want := strings.Count(head, tt.eol), terminators; got != want {
				t.Errorf("%d of the %d added lines end in %q", got, want, tt.eol)
			}
		})
	}
}

func TestReceiveLargeMessage(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := newFixture(t, nil)
	// Past memoryLimit, so the message goes through a temporary file.
	raw := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 100_000)
	rc, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := f.objects.get(rc.Key)
	if got, want := sha256.Sum256(stored[len(stored)-len(raw):]), sha256.Sum256([]byte(raw)); got != want {
		t.Error("the large message was not stored intact")
	}
	if got, want := rc.Event.Records[0].SES.Mail.CommonHeaders.Subject, "big"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestSpool(t *testing.T) {
	const max = memoryLimit + 1024
	tests := []struct {
		name     string
		size     int
		wantFile bool
		wantErr  error
	}{
		{"small, in memory", 10, false, nil},
		{"past the memory limit, in a file", memoryLimit + 1, true, nil},
		{"exactly the maximum", max, true, nil},
		{"one byte too many", max + 1, false, errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := spool(bytes.NewReader(make([]byte, tt.size)), max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer m.Close()
			if got := m.file != nil; got != tt.wantFile || m.size != int64(tt.size) {
				t.Errorf("in a file: %v, size %d; want %v, %d", got, m.size, tt.wantFile, tt.size)
			}
		})
	}
}

func TestReceiveRefuses(t *testing.T) {
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("user%d@example.com", i)
	}
	tests := []struct {
		name       string
		from       string
		recipients []string
		raw        string
		field      string
		mention    string
	}{
		{"unknown domain", "a@example.net", []string{"b@example.com", "c@example.org"}, sample, "recipients", "example.org"},
		{"look-alike domain", "a@example.net", []string{"b@notexample.com"}, sample, "recipients", "notexample.com"},
		{"no recipients", "a@example.net", nil, sample, "recipients", "at least one"},
		{"51 recipients", "a@example.net", many, sample, "recipients", "at most 50"},
		{"header injection in sender", "a@example.net\r\nBcc: x@example.org", []string{"b@example.com"}, sample, "envelopeFrom", "not an address"},
		{"header injection in recipient", "a@example.net", []string{"b@example.com>\r\nX-Injected: 1\r\n <c@example.com"}, sample, "recipients", "not an address"},
		{"too large", "a@example.net", []string{"b@example.com"}, strings.Repeat("x", 2049), "raw", "more than 2048 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxSize = 2048 })
			_, err := f.in.Receive(context.Background(), tt.from, tt.recipients, strings.NewReader(tt.raw))
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("err = %v, want invalid %s mentioning %q", err, tt.field, tt.mention)
			}
			if n := f.objects.len(); n != 0 {
				t.Errorf("%d objects written, want none", n)
			}
			if n := len(f.handler.calls()); n != 0 {
				t.Errorf("handler called %d times, want never", n)
			}
		})
	}
}

func TestReceiveAtMaxSize(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxSize = 2048 })
	if _, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(strings.Repeat("x", 2048))); err != nil {
		t.Fatalf("a message of exactly MaxSize: %v", err)
	}
}

func TestInvokeRetries(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		fail      func(call int) error
		wantCalls int
		wantErr   bool
	}{
		{"succeeds", nil, 1, false},
		{"fails twice then succeeds", func(n int) error {
			if n < 3 {
				return boom
			}
			return nil
		}, 3, false},
		{"always fails", func(int) error { return boom }, 3, true},
		{"panics", func(int) error { panic("nil map") }, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.handler.fail = tt.fail
			rc, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(sample))
			if err != nil {
				t.Fatalf("Receive: %v (a failing function must not refuse the message)", err)
			}
			if got := len(f.handler.calls()); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if got := rc.InvokeErr != nil; got != tt.wantErr {
				t.Errorf("InvokeErr = %v, want error: %v", rc.InvokeErr, tt.wantErr)
			}
			if n := f.objects.len(); n != 1 {
				t.Errorf("%d objects stored, want the one raw message", n)
			}
			logged := strings.Contains(f.logs.String(), "level=ERROR") && strings.Contains(f.logs.String(), "message_id="+fixedID)
			if logged != tt.wantErr {
				t.Errorf("error logged with the message id: %v, want %v\n%s", logged, tt.wantErr, f.logs.String())
			}
		})
	}
}

// Each attempt gets its own copy of the event, as each Lambda retry decodes the payload afresh.
func TestInvokeAttemptsDoNotShareEvents(t *testing.T) {
	var seen []string
	f := newFixture(t, func(c *Config) {
		c.Invoke = func(_ context.Context, ev events.SimpleEmailEvent) error {
			rp := &ev.Records[0].SES.Mail.Headers[0].Value
			seen = append(seen, *rp)
			*rp = "changed by the handler"
			if len(seen) == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		}
	})
	if _, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"<a@example.net>", "<a@example.net>"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("attempts saw Return-Path %q, want %q", seen, want)
	}
}

func TestHeadersTruncated(t *testing.T) {
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "X-Trace-%03d: %s\r\n", i, strings.Repeat("t", 80))
	}
	raw := b.String() + "From: a@example.net\r\nSubject: after the trace\r\n\r\nbody\r\n"
	f := newFixture(t, nil)
	rc, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mail := rc.Event.Records[0].SES.Mail
	if !mail.HeadersTruncated {
		t.Error("headersTruncated = false for 19 KB of headers")
	}
	size := 0
	for _, h := range mail.Headers {
		size += len(h.Name) + 2 + len(h.Value)
	}
	if size > 10<<10 || size < 9<<10 {
		t.Errorf("listed headers hold %d bytes, want just under 10 KB", size)
	}
	if got, want := mail.CommonHeaders.Subject, "after the trace"; got != want {
		t.Errorf("subject = %q, want %q: common headers come from the whole header", got, want)
	}
}

func TestAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a@example.com", []string{"a@example.com"}},
		{"a@example.com,b@example.com", []string{"a@example.com", "b@example.com"}},
		{`"Doe, Jane" <jane@example.net>, bob@example.org`, []string{`"Doe, Jane" <jane@example.net>`, "bob@example.org"}},
		{`"Quote \" and, comma" <q@example.net>`, []string{`"Quote \" and, comma" <q@example.net>`}},
		{"a@example.com (Alice, Sales), b@example.com", []string{"a@example.com (Alice, Sales)", "b@example.com"}},
		{"<odd,route@example.com>", []string{"<odd,route@example.com>"}},
		{" , a@example.com ,", []string{"a@example.com"}},
	}
	for _, tt := range tests {
		if got := addressList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("addressList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewRequires(t *testing.T) {
	ok := Config{Domains: []string{"example.com"}, Objects: &objects{}, Invoke: (&handler{}).invoke}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"Objects", func(c *Config) { c.Objects = nil }, "Objects"},
		{"Invoke", func(c *Config) { c.Invoke = nil }, "Invoke"},
		{"Domains", func(c *Config) { c.Domains = nil }, "Domains"},
		{"empty domain", func(c *Config) { c.Domains = []string{" "} }, "Domains"},
		{"address as domain", func(c *Config) { c.Domains = []string{"sales@example.com"} }, "Domains"},
		{"verdict", func(c *Config) { c.Verdicts.Spam = "pass" }, "Verdicts"},
		{"policy", func(c *Config) { c.Verdicts.DMARCPolicy = "drop" }, "Verdicts"},
		{"MaxSize", func(c *Config) { c.MaxSize = -1 }, "MaxSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := New(cfg)
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
				t.Errorf("New: err = %v, want invalid field %s", err, tt.field)
			}
		})
	}
	in, err := New(ok)
	if err != nil {
		t.Fatalf("New with the required fields: %v", err)
	}
	in.Close()
}

func TestDomains(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Domains = []string{"Example.com", ".example.org."} })
	tests := []struct {
		rcpt string
		ok   bool
	}{
		{"a@example.com", true},
		{"a@EXAMPLE.COM", true},
		{"a@sales.example.com", true},
		{"a@deep.sub.example.org", true},
		{"a@example.org", true},
		{"a@notexample.com", false},
		{"a@example.com.evil.test", false},
		{"a@example.net", false},
		{"postmaster", false},
		{"@example.com", false},
	}
	for _, tt := range tests {
		if got := f.in.checkRecipient("test", tt.rcpt) == nil; got != tt.ok {
			t.Errorf("recipient %q accepted = %v, want %v", tt.rcpt, got, tt.ok)
		}
	}
}

func TestRandomID(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z0-9]{40}$`)
	seen := map[string]bool{}
	for range 100 {
		id := randomID()
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("id %q is not 40 fresh lowercase alphanumerics", id)
		}
		seen[id] = true
	}
}

func TestBadNewID(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.NewID = func() string { return "../archive/x" } })
	_, err := f.in.Receive(context.Background(), "a@example.net", []string{"b@example.com"}, strings.NewReader(sample))
	if err == nil || f.objects.len() != 0 {
		t.Errorf("an id that is not a plain key was used: err = %v", err)
	}
}

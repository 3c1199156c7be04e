// Package events_test proves that the sample events under events/ have the shape AWS sends: each
// file decodes into the Go type its trigger uses with no field left over, comes back out unchanged,
// and shows what its name says. Handlers' tests and local invokes can then trust the samples.
package events_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/shared/sesnotify"
)

// decoders says which Go type reads the files of each folder. A folder missing here fails the
// test, so a new trigger cannot ship samples that nothing checks.
var decoders = map[string]func(t *testing.T, name string, raw []byte){
	"ses-receipt": checkReceipt,
	"ses-events":  checkSESEvent,
	"api":         checkAPI,
	"schedule":    checkSchedule,
}

func TestSamples(t *testing.T) {
	seen := map[string][]string{}
	err := fs.WalkDir(os.DirFS("."), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, "_test.go") {
			return nil
		}
		folder, name, ok := strings.Cut(p, "/")
		if !ok {
			t.Errorf("events/%s: sample files belong in a folder named for their trigger", p)
			return nil
		}
		if strings.Contains(name, "/") {
			t.Errorf("events/%s: samples sit directly in their trigger folder, not deeper", p)
			return nil
		}
		check, ok := decoders[folder]
		if !ok {
			t.Errorf("events/%s: no decoder claims folder %q; add it to decoders in events_test.go", p, folder)
			return nil
		}
		if path.Ext(name) != ".json" {
			t.Errorf("events/%s: samples are .json files", p)
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		seen[folder] = append(seen[folder], name)
		t.Run(p, func(t *testing.T) { check(t, name, raw) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every sample must say what it is meant to show, and every promised sample must exist.
	for folder, want := range map[string][]string{
		"ses-receipt": keys(receiptWants),
		"ses-events":  keys(sesEventWants),
		"api":         keys(apiWants),
		"schedule":    keys(scheduleWants),
	} {
		got := seen[folder]
		sort.Strings(got)
		for _, name := range got {
			if !slices.Contains(want, name) {
				t.Errorf("events/%s/%s: no expectation for it in events_test.go", folder, name)
			}
		}
		for _, name := range want {
			if !slices.Contains(got, name) {
				t.Errorf("events/%s/%s: expected sample is missing", folder, name)
			}
		}
	}
}

// --- SES receipt (Lambda action) ---

type receiptWant struct {
	source           string // envelope MAIL FROM; "" for a null reverse-path
	recipients       []string
	spam, virus      string
	spf, dkim, dmarc string
	dmarcPolicy      string
	headersTruncated bool
}

var receiptWants = map[string]receiptWant{
	"typical.json": {
		source: "prvs=144d0cba7=customer@example.org", recipients: []string{"sales@example.com"},
		spam: "PASS", virus: "PASS", spf: "PASS", dkim: "PASS", dmarc: "PASS",
	},
	"multiple-recipients-cc.json": {
		source:     "tran.vu@example.org",
		recipients: []string{"sales@example.com", "wei.lee@example.com", "support@example.com"},
		spam:       "PASS", virus: "PASS", spf: "PASS", dkim: "PASS", dmarc: "PASS",
	},
	"spam-fail.json": {
		source: "offers@bulk.example.net", recipients: []string{"info@example.com"},
		spam: "FAIL", virus: "PASS", spf: "PASS", dkim: "GRAY", dmarc: "GRAY",
	},
	"virus-fail.json": {
		source: "accounts@example.net", recipients: []string{"finance@example.com"},
		spam: "PASS", virus: "FAIL", spf: "GRAY", dkim: "GRAY", dmarc: "GRAY",
	},
	"dmarc-reject.json": {
		source: "payroll@example.org", recipients: []string{"hr@example.com"},
		spam: "PASS", virus: "PASS", spf: "FAIL", dkim: "FAIL", dmarc: "FAIL", dmarcPolicy: "reject",
	},
	"null-sender-bounce.json": {
		source: "", recipients: []string{"sales@example.com"},
		spam: "PASS", virus: "PASS", spf: "GRAY", dkim: "GRAY", dmarc: "GRAY",
	},
	"headers-truncated.json": {
		source: "list-bounces@lists.example.org", recipients: []string{"support@example.com"},
		spam: "PASS", virus: "PASS", spf: "PASS", dkim: "PASS", dmarc: "PASS", headersTruncated: true,
	},
}

var verdictStatuses = []string{"PASS", "FAIL", "GRAY", "PROCESSING_FAILED", "DISABLED"}

func checkReceipt(t *testing.T, name string, raw []byte) {
	var ev events.SimpleEmailEvent
	roundTrip(t, raw, &ev)
	// SES invokes the Lambda action once per message.
	if len(ev.Records) != 1 {
		t.Fatalf("Records: got %d, want 1", len(ev.Records))
	}
	rec := ev.Records[0]
	if rec.EventSource != "aws:ses" {
		t.Errorf("eventSource: got %q, want aws:ses", rec.EventSource)
	}
	if rec.EventVersion != "1.0" {
		t.Errorf("eventVersion: got %q, want 1.0", rec.EventVersion)
	}
	m, r := rec.SES.Mail, rec.SES.Receipt
	if m.MessageID == "" {
		t.Error("ses.mail.messageId is empty")
	}
	if m.Timestamp.IsZero() || r.Timestamp.IsZero() {
		t.Error("ses.mail.timestamp and ses.receipt.timestamp must be set")
	}
	if len(m.Headers) == 0 || m.CommonHeaders.MessageID == "" {
		t.Error("ses.mail.headers and commonHeaders.messageId must be set")
	}
	if r.Action.Type != "Lambda" || r.Action.InvocationType != "Event" || r.Action.FunctionARN == "" {
		t.Errorf("ses.receipt.action: got %+v, want an asynchronous Lambda action", r.Action)
	}
	verdicts := map[string]string{
		"spamVerdict": r.SpamVerdict.Status, "virusVerdict": r.VirusVerdict.Status,
		"spfVerdict": r.SPFVerdict.Status, "dkimVerdict": r.DKIMVerdict.Status,
		"dmarcVerdict": r.DMARCVerdict.Status,
	}
	for field, status := range verdicts {
		if !slices.Contains(verdictStatuses, status) {
			t.Errorf("ses.receipt.%s: %q is not one of %v", field, status, verdictStatuses)
		}
	}
	// SES copies its spam and virus verdicts into headers; a sample where they disagree is not real.
	for header, status := range map[string]string{"X-SES-Spam-Verdict": r.SpamVerdict.Status, "X-SES-Virus-Verdict": r.VirusVerdict.Status} {
		if got := headerValue(m.Headers, header); got != status {
			t.Errorf("header %s: got %q, want %q as in the receipt verdict", header, got, status)
		}
	}
	// SES only reports the sender's DMARC policy when DMARC failed.
	if (r.DMARCPolicy != "") != (r.DMARCVerdict.Status == "FAIL") {
		t.Errorf("dmarcPolicy %q with dmarcVerdict %q: SES sets the policy exactly when DMARC fails",
			r.DMARCPolicy, r.DMARCVerdict.Status)
	}

	want, ok := receiptWants[name]
	if !ok {
		return // reported by TestSamples
	}
	got := receiptWant{
		source: m.Source, recipients: r.Recipients,
		spam: r.SpamVerdict.Status, virus: r.VirusVerdict.Status,
		spf: r.SPFVerdict.Status, dkim: r.DKIMVerdict.Status, dmarc: r.DMARCVerdict.Status,
		dmarcPolicy: r.DMARCPolicy, headersTruncated: m.HeadersTruncated,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func headerValue(hs []events.SimpleEmailHeader, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// --- SES configuration-set events, through EventBridge or SNS ---

type sesEventWant struct {
	eventType  sesnotify.EventType
	recipients []string
	bounceType sesnotify.BounceType
}

var sesEventWants = map[string]sesEventWant{
	"eventbridge-send.json":             {eventType: sesnotify.EventSend, recipients: []string{"amy.tan@mailhost.example.net"}},
	"eventbridge-delivery.json":         {eventType: sesnotify.EventDelivery, recipients: []string{"amy.tan@mailhost.example.net"}},
	"eventbridge-bounce-permanent.json": {eventType: sesnotify.EventBounce, recipients: []string{"former.employee@mailhost.example.net"}, bounceType: sesnotify.BouncePermanent},
	"eventbridge-bounce-transient.json": {eventType: sesnotify.EventBounce, recipients: []string{"customer@example.org"}, bounceType: sesnotify.BounceTransient},
	"eventbridge-complaint.json":        {eventType: sesnotify.EventComplaint, recipients: []string{"customer@example.org"}},
	"eventbridge-reject.json":           {eventType: sesnotify.EventReject, recipients: []string{"controller@mailhost.example.net"}},
	"eventbridge-delivery-delay.json":   {eventType: sesnotify.EventDeliveryDelay, recipients: []string{"it-desk@example.net"}},
	"sns-bounce.json":                   {eventType: sesnotify.EventBounce, recipients: []string{"old.address@example.org"}, bounceType: sesnotify.BouncePermanent},
	"sns-complaint.json":                {eventType: sesnotify.EventComplaint, recipients: []string{"buyer@example.org"}},
	"sns-delivery.json":                 {eventType: sesnotify.EventDelivery, recipients: []string{"buyer@example.org"}},
}

func checkSESEvent(t *testing.T, name string, raw []byte) {
	var records []sesnotify.Record
	switch {
	case strings.HasPrefix(name, "eventbridge-"):
		var ev events.CloudWatchEvent
		roundTrip(t, raw, &ev)
		t.Run("detail", func(t *testing.T) { roundTrip(t, ev.Detail, new(sesnotify.Record)) })
		r, err := sesnotify.FromEventBridge(ev)
		if err != nil {
			t.Fatalf("FromEventBridge: %v", err)
		}
		records = append(records, r)
	case strings.HasPrefix(name, "sns-"):
		var ev events.SNSEvent
		roundTrip(t, raw, &ev)
		if len(ev.Records) == 0 {
			t.Fatal("Records is empty")
		}
		for i, rec := range ev.Records {
			t.Run(fmt.Sprintf("Records[%d].Sns.Message", i), func(t *testing.T) {
				roundTrip(t, []byte(rec.SNS.Message), new(sesnotify.Record))
			})
			r, err := sesnotify.FromSNS(rec)
			if err != nil {
				t.Fatalf("FromSNS: %v", err)
			}
			records = append(records, r)
		}
	default:
		t.Fatalf("%s: name it eventbridge-*.json or sns-*.json so the test knows its transport", name)
	}
	for _, r := range records {
		if r.EventType == "" || r.Mail.MessageID == "" {
			t.Errorf("record without eventType or mail.messageId: %+v", r)
		}
		if len(r.Mail.Tags["ses:configuration-set"]) != 1 {
			t.Errorf("mail.tags[ses:configuration-set]: got %v, want the one configuration set", r.Mail.Tags["ses:configuration-set"])
		}
		want, ok := sesEventWants[name]
		if !ok {
			continue // reported by TestSamples
		}
		got := sesEventWant{eventType: r.EventType, recipients: r.Recipients()}
		if r.Bounce != nil {
			got.bounceType = r.Bounce.BounceType
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	}
}

// --- Admin API: API Gateway HTTP API, payload format 2.0, JWT authorizer ---

type apiWant struct {
	routeKey   string
	pathParams map[string]string
	query      map[string]string
	ifMatch    string
	bodyKind   string // "", "json" or "base64"
}

var apiWants = map[string]apiWant{
	"get-archive-search.json": {
		routeKey: "GET /v1/archive/messages",
		query:    map[string]string{"sender": "customer@example.org", "after": "2024-03-01", "label": "quote", "limit": "50"},
	},
	"post-json-routing-rule.json": {routeKey: "POST /v1/routing/rules", bodyKind: "json"},
	"post-base64-import.json": {
		routeKey: "POST /v1/archive/imports", query: map[string]string{"mailbox": "sales@example.com"}, bodyKind: "base64",
	},
	"put-if-match-sla-policy.json": {
		routeKey: "PUT /v1/sla/policies/{policyId}", pathParams: map[string]string{"policyId": "support-standard"},
		ifMatch: `"7"`, bodyKind: "json",
	},
}

var groupsClaim = regexp.MustCompile(`^\[[^ \[\]]+( [^ \[\]]+)*\]$`)

func checkAPI(t *testing.T, name string, raw []byte) {
	var ev events.APIGatewayV2HTTPRequest
	roundTrip(t, raw, &ev)
	rc := ev.RequestContext
	if ev.Version != "2.0" {
		t.Errorf("version: got %q, want 2.0", ev.Version)
	}
	method, route, _ := strings.Cut(ev.RouteKey, " ")
	if rc.RouteKey != ev.RouteKey || rc.HTTP.Method != method {
		t.Errorf("routeKey %q, requestContext.routeKey %q and http.method %q disagree", ev.RouteKey, rc.RouteKey, rc.HTTP.Method)
	}
	if rc.HTTP.Path != ev.RawPath {
		t.Errorf("requestContext.http.path %q != rawPath %q", rc.HTTP.Path, ev.RawPath)
	}
	if got := fillRoute(route, ev.PathParameters); got != ev.RawPath {
		t.Errorf("route %q with pathParameters %v gives %q, not rawPath %q", route, ev.PathParameters, got, ev.RawPath)
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q: HTTP APIs pass header names in lower case", k)
		}
	}
	q, err := url.ParseQuery(ev.RawQueryString)
	if err != nil {
		t.Errorf("rawQueryString: %v", err)
	}
	flat := map[string]string{}
	for k, v := range q {
		flat[k] = strings.Join(v, ",") // HTTP APIs join repeated parameters with commas
	}
	if len(flat) == 0 {
		flat = nil
	}
	if !reflect.DeepEqual(flat, ev.QueryStringParameters) {
		t.Errorf("queryStringParameters %v do not match rawQueryString %q", ev.QueryStringParameters, ev.RawQueryString)
	}

	if rc.Authorizer == nil || rc.Authorizer.JWT == nil {
		t.Fatal("requestContext.authorizer.jwt is missing: every admin route sits behind the JWT authorizer")
	}
	claims := rc.Authorizer.JWT.Claims
	for _, c := range []string{"sub", "email", "iss", "exp"} {
		if claims[c] == "" {
			t.Errorf("claim %q is missing", c)
		}
	}
	// The authorizer flattens array claims to "[a b]"; admin code must parse that form.
	if g := claims["cognito:groups"]; !groupsClaim.MatchString(g) {
		t.Errorf("claim cognito:groups %q is not in the authorizer's \"[a b]\" form", g)
	}

	want, ok := apiWants[name]
	if !ok {
		return // reported by TestSamples
	}
	if ev.RouteKey != want.routeKey {
		t.Errorf("routeKey: got %q, want %q", ev.RouteKey, want.routeKey)
	}
	if !reflect.DeepEqual(ev.PathParameters, want.pathParams) {
		t.Errorf("pathParameters: got %v, want %v", ev.PathParameters, want.pathParams)
	}
	if !reflect.DeepEqual(ev.QueryStringParameters, want.query) {
		t.Errorf("queryStringParameters: got %v, want %v", ev.QueryStringParameters, want.query)
	}
	if got := ev.Headers["if-match"]; got != want.ifMatch {
		t.Errorf("if-match: got %q, want %q", got, want.ifMatch)
	}
	body := []byte(ev.Body)
	switch want.bodyKind {
	case "":
		if ev.Body != "" || ev.IsBase64Encoded {
			t.Errorf("body: got %q (base64 %v), want none", ev.Body, ev.IsBase64Encoded)
		}
		return
	case "json":
		if ev.IsBase64Encoded || !json.Valid(body) {
			t.Errorf("body: want a plain JSON document, got base64 %v, %q", ev.IsBase64Encoded, ev.Body)
		}
		if ct := ev.Headers["content-type"]; ct != "application/json" {
			t.Errorf("content-type: got %q, want application/json", ct)
		}
	case "base64":
		if !ev.IsBase64Encoded {
			t.Fatal("isBase64Encoded: want true")
		}
		body, err = base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			t.Fatalf("body: %v", err)
		}
	}
	if cl := ev.Headers["content-length"]; cl != strconv.Itoa(len(body)) {
		t.Errorf("content-length %q, but the decoded body is %d bytes", cl, len(body))
	}
}

// fillRoute substitutes {name} segments of an HTTP API route with the path parameters.
func fillRoute(route string, params map[string]string) string {
	segs := strings.Split(route, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = params[strings.Trim(s, "{}")]
		}
	}
	return strings.Join(segs, "/")
}

// --- Scheduled jobs (EventBridge rules) ---

var scheduleWants = map[string]string{ // file → rule name
	"sla-sweep.json": "mailroom-sla-sweep",
	"retention.json": "mailroom-retention",
}

func checkSchedule(t *testing.T, name string, raw []byte) {
	var ev events.CloudWatchEvent
	roundTrip(t, raw, &ev)
	if ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" {
		t.Errorf("source %q, detail-type %q: want aws.events, Scheduled Event", ev.Source, ev.DetailType)
	}
	if string(ev.Detail) != "{}" {
		t.Errorf("detail: got %s, want {}", ev.Detail)
	}
	if ev.Time.IsZero() || ev.ID == "" {
		t.Error("id and time must be set: the jobs use time as the sweep's 'now'")
	}
	rule, ok := scheduleWants[name]
	if !ok {
		return // reported by TestSamples
	}
	want := []string{"arn:aws:events:" + ev.Region + ":" + ev.AccountID + ":rule/" + rule}
	if !reflect.DeepEqual(ev.Resources, want) {
		t.Errorf("resources: got %v, want %v", ev.Resources, want)
	}
}

// --- round trip ---

// roundTrip decodes raw into v refusing unknown fields, encodes v again and reports every field
// whose value did not survive. A sample that relies on a field the Go type drops fails here.
func roundTrip(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := decodeStrict(raw, v); err != nil {
		t.Fatalf("decode into %T: %v", v, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	var want, got any
	if err := decodeAny(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := decodeAny(out, &got); err != nil {
		t.Fatal(err)
	}
	for _, d := range diffJSON("$", want, got) {
		t.Errorf("%T round trip: %s", v, d)
	}
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

func decodeAny(raw []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// diffJSON compares the original document with the re-encoded one. A field missing on one side
// only matters when its value is not empty: Go's types write zero values the sample omits, and
// omit empty ones the sample writes.
func diffJSON(at string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object", at, brief(got))}
		}
		var diffs []string
		for _, k := range keys(w) {
			gv, ok := g[k]
			if !ok {
				if !isEmpty(w[k]) {
					diffs = append(diffs, fmt.Sprintf("%s.%s: dropped (was %s)", at, k, brief(w[k])))
				}
				continue
			}
			diffs = append(diffs, diffJSON(at+"."+k, w[k], gv)...)
		}
		for _, k := range keys(g) {
			if _, ok := w[k]; !ok && !isEmpty(g[k]) {
				diffs = append(diffs, fmt.Sprintf("%s.%s: added %s", at, k, brief(g[k])))
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			if len(w) == 0 && isEmpty(got) {
				return nil
			}
			return []string{fmt.Sprintf("%s: got %s, want an array", at, brief(got))}
		}
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %d items, want %d", at, len(g), len(w))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, diffJSON(fmt.Sprintf("%s[%d]", at, i), w[i], g[i])...)
		}
		return diffs
	case string:
		if g, ok := got.(string); ok && (g == w || sameInstant(g, w)) {
			return nil
		}
	case json.Number:
		if g, ok := got.(json.Number); ok {
			wf, err1 := w.Float64()
			gf, err2 := g.Float64()
			if g == w || (err1 == nil && err2 == nil && wf == gf) {
				return nil
			}
		}
	case nil:
		if isEmpty(got) {
			return nil
		}
	default:
		if reflect.DeepEqual(want, got) {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: got %s, want %s", at, brief(got), brief(want))}
}

// sameInstant accepts a timestamp Go writes with fewer fractional digits than the sample.
func sameInstant(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.Equal(tb)
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case json.Number:
		f, err := v.Float64()
		return err == nil && f == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		for _, x := range v {
			if !isEmpty(x) {
				return false
			}
		}
		return true
	}
	return false
}

func brief(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

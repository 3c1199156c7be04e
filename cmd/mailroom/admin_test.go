package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// okAPI answers every request with body as JSON.
func okAPI(t *testing.T, status int, body string) *fakeAPI {
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func TestUpdateSendsOnlyTheFlagsGiven(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantPath    string
		wantPatch   string
		wantIfMatch string
	}{
		{"one field", []string{"mailboxes", "update", "ana@example.com", "--name", "Ana Lim"},
			"/mailboxes/ana@example.com", `{"displayName":"Ana Lim"}`, ""},
		{"an empty value clears", []string{"mailboxes", "update", "ana@example.com", "--manager", ""},
			"/mailboxes/ana@example.com", `{"manager":null}`, ""},
		{"lists", []string{"mailboxes", "update", "ana@example.com", "--forward", "a@corp.example,b@corp.example", "--locale", "ms-MY"},
			"/mailboxes/ana@example.com", `{"forwardTo":["a@corp.example","b@corp.example"],"locale":"ms-MY"}`, ""},
		{"clear forwarding", []string{"mailboxes", "update", "ana@example.com", "--clear-forward"},
			"/mailboxes/ana@example.com", `{"forwardTo":null}`, ""},
		{"if-match", []string{"domains", "update", "example.com", "--unknown-recipients", "drop", "--if-match", "3"},
			"/domains/example.com", `{"unknownRecipients":"drop"}`, `"3"`},
		{"nested posting policy", []string{"groups", "update", "sales", "--posting", "allow-list", "--allow", "@corp.example", "--allow", "x@other.example"},
			"/groups/sales", `{"posting":{"allow":["@corp.example","x@other.example"],"policy":"allow-list"}}`, ""},
		{"only part of the posting policy", []string{"groups", "update", "sales", "--moderator", "boss@example.com", "--expires", ""},
			"/groups/sales", `{"expires":null,"posting":{"moderators":["boss@example.com"]}}`, ""},
		{"alias", []string{"aliases", "update", "info@example.com", "--target", "sales@example.com"},
			"/aliases/info@example.com", `{"target":"sales@example.com"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := okAPI(t, 200, `{}`)
			if out, err := run(t, append(tt.args, "--url", api.URL, "--token", "tok")...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			reqs := api.got()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != "PATCH" || r.path != tt.wantPath {
				t.Errorf("request = %s %s, want PATCH %s", r.method, r.path, tt.wantPath)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/merge-patch+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := r.header.Get("If-Match"); got != tt.wantIfMatch {
				t.Errorf("If-Match = %q, want %q", got, tt.wantIfMatch)
			}
			if r.body != tt.wantPatch {
				t.Errorf("patch = %s, want %s", r.body, tt.wantPatch)
			}
		})
	}

	api := okAPI(t, 200, `{}`)
	_, err := run(t, "mailboxes", "update", "ana@example.com", "--url", api.URL, "--token", "tok")
	if err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Errorf("update without flags: error = %v", err)
	}
	_, err = run(t, "groups", "update", "sales", "--name", "x", "--if-match", "three", "--url", api.URL, "--token", "tok")
	if err == nil || !strings.Contains(err.Error(), "--if-match") {
		t.Errorf("update --if-match three: error = %v", err)
	}
	if n := len(api.got()); n != 0 {
		t.Errorf("refused updates sent %d requests", n)
	}
}

func TestCreateRequests(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantPath string
		wantBody string
	}{
		{"domain", []string{"domains", "create", "example.com", "--unknown-recipients", "catch-all", "--catch-all", "inbox@example.com"},
			"/domains", `{"catchAll":"inbox@example.com","name":"example.com","unknownRecipients":"catch-all"}`},
		{"mailbox, empty values left out", []string{"mailboxes", "create", "ana@example.com", "--name", "Ana", "--manager", ""},
			"/mailboxes", `{"address":"ana@example.com","displayName":"Ana"}`},
		{"group", []string{"groups", "create", "--name", "Sales", "--id", "sales", "--type", "department", "--address", "sales@example.com",
			"--owner", "boss@example.com", "--owner", "ana@example.com", "--posting", "members"},
			"/groups", `{"addresses":["sales@example.com"],"id":"sales","name":"Sales","owners":["boss@example.com","ana@example.com"],"posting":{"policy":"members"},"type":"department"}`},
		{"alias", []string{"aliases", "create", "info@example.com", "--target", "sales@example.com"},
			"/aliases", `{"address":"info@example.com","target":"sales@example.com"}`},
		{"bare address is a mailbox", []string{"groups", "add-member", "sales", "ana@example.com"},
			"/groups/sales/members", `{"kind":"mailbox","address":"ana@example.com"}`},
		{"external", []string{"groups", "add-member", "sales", "partner@other.example", "--external"},
			"/groups/sales/members", `{"kind":"external","address":"partner@other.example"}`},
		{"nested group", []string{"groups", "add-member", "sales", "group:sales-apac"},
			"/groups/sales/members", `{"kind":"group","group":"sales-apac"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := okAPI(t, 201, `{"kind":"mailbox","address":"ana@example.com"}`)
			if out, err := run(t, append(tt.args, "--url", api.URL, "--token", "tok")...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			r := api.got()[0]
			if r.method != "POST" || r.path != tt.wantPath || r.body != tt.wantBody {
				t.Errorf("request = %s %s %s\nwant POST %s %s", r.method, r.path, r.body, tt.wantPath, tt.wantBody)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if r.header.Get("Idempotency-Key") == "" {
				t.Error("no Idempotency-Key")
			}
		})
	}

	api := okAPI(t, 201, `{"name":"example.com"}`)
	run(t, "domains", "create", "example.com", "--idempotency-key", "create-example-com", "--url", api.URL, "--token", "tok")
	run(t, "domains", "create", "example.com", "--url", api.URL, "--token", "tok")
	run(t, "domains", "create", "example.com", "--url", api.URL, "--token", "tok")
	reqs := api.got()
	if got := reqs[0].header.Get("Idempotency-Key"); got != "create-example-com" {
		t.Errorf("--idempotency-key: sent %q", got)
	}
	if reqs[1].header.Get("Idempotency-Key") == reqs[2].header.Get("Idempotency-Key") {
		t.Error("two invocations sent the same Idempotency-Key")
	}
}

func TestParseMember(t *testing.T) {
	tests := []struct {
		arg      string
		external bool
		want     member
		wantErr  string
	}{
		{"ana@example.com", false, member{Kind: "mailbox", Address: "ana@example.com"}, ""},
		{"partner@other.example", true, member{Kind: "external", Address: "partner@other.example"}, ""},
		{"mailbox:ana@example.com", false, member{Kind: "mailbox", Address: "ana@example.com"}, ""},
		{"external:partner@other.example", false, member{Kind: "external", Address: "partner@other.example"}, ""},
		{"external:partner@other.example", true, member{Kind: "external", Address: "partner@other.example"}, ""},
		{"group:sales-apac", false, member{Kind: "group", Group: "sales-apac"}, ""},
		{`"odd:local"@example.com`, false, member{Kind: "mailbox", Address: `"odd:local"@example.com`}, ""},
		{"sales", false, member{}, "group:ID"},
		{"group:", false, member{}, "nothing after"},
		{"alias:info@example.com", false, member{}, "mailbox, external or group"},
		{"group:sales", true, member{}, "--external is for a bare address"},
	}
	for _, tt := range tests {
		got, err := parseMember(tt.arg, tt.external)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseMember(%q) error = %v, want %q", tt.arg, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMember(%q, %v) = %+v, %v; want %+v", tt.arg, tt.external, got, err, tt.want)
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 30, 15, 500, time.UTC)
	tests := []struct {
		in, want, wantErr string
	}{
		{"2026-11-20T08:00:00Z", "2026-11-20T08:00:00Z", ""},
		{"2026-11-20T16:00:00+08:00", "2026-11-20T08:00:00Z", ""},
		{"2026-11-20", "2026-11-20T00:00:00Z", ""},
		{"24h", "2026-11-22T09:30:15Z", ""},
		{"90m", "2026-11-23T08:00:15Z", ""},
		{"7d", "2026-11-16T09:30:15Z", ""},
		{"yesterday", "", "not a time"},
		{"-2h", "", "not a time"},
		{"0d", "", "not a time"},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.in, now)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseWhen(%q) error = %v", tt.in, err)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339) != tt.want {
			t.Errorf("parseWhen(%q) = %s, %v; want %s", tt.in, got.Format(time.RFC3339), err, tt.want)
		}
	}
}

func TestKindFromName(t *testing.T) {
	tests := map[string]string{
		"mailboxes.csv":               "mailboxes",
		"dir/Groups.CSV":              "groups",
		"mailroom-members.csv":        "members",
		"2026-11_aliases.csv":         "aliases",
		"domains-2026.csv":            "domains",
		"people.csv":                  "",
		"mailboxes-and-aliases.csv":   "",
		"/tmp/x/mailroom-domains.csv": "domains",
	}
	for in, want := range tests {
		if got := kindFromName(in); got != want {
			t.Errorf("kindFromName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImportRequests(t *testing.T) {
	report := `{"dryRun":true,"created":1,"updated":0,"unchanged":1,"results":[{"kind":"mailbox","id":"ana@example.com","outcome":"created"},{"kind":"mailbox","id":"bob@example.com","outcome":"unchanged"}]}`
	tests := []struct {
		name, file     string
		args           []string
		wantType       string
		wantQuery      string
		wantErr        string
		wantOutputPart string
	}{
		{"json", "dir.json", []string{"--dry-run"}, "application/json", "dryRun=true", "", "would be created"},
		{"csv, kind from the name", "mailroom-mailboxes.csv", nil, "text/csv", "kind=mailboxes", "", "1 created"},
		{"csv, kind given", "people.csv", []string{"--kind", "mailboxes"}, "text/csv", "kind=mailboxes", "", ""},
		{"csv, kind unknown", "people.csv", nil, "", "", "give --kind", ""},
		{"kind for json", "dir.json", []string{"--kind", "groups"}, "", "", "--kind is for CSV", ""},
		{"other file", "dir.yaml", nil, "", "", ".json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := okAPI(t, 200, report)
			path := writeFile(t, tt.file, "address\n")
			out, err := run(t, append([]string{"directory", "import", path, "--url", api.URL, "--token", "tok"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want %q", err, tt.wantErr)
				}
				if len(api.got()) != 0 {
					t.Error("a refused import was sent")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := api.got()[0]
			if r.method != "POST" || r.path != "/directory/import" || r.query != tt.wantQuery || r.header.Get("Content-Type") != tt.wantType {
				t.Errorf("request = %s %s?%s (%s)", r.method, r.path, r.query, r.header.Get("Content-Type"))
			}
			if !strings.Contains(out, tt.wantOutputPart) || strings.Contains(out, "bob@example.com") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

// pagedAPI serves n domains in pages of the requested limit, with cursors that are page numbers
// in disguise.
func pagedAPI(t *testing.T, n int) *fakeAPI {
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit == 0 {
			limit = 100
		}
		start := 0
		if c := q.Get("cursor"); c != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(c, "after/"))
		}
		var page struct {
			Items []map[string]any `json:"items"`
			Next  string           `json:"next,omitempty"`
		}
		page.Items = []map[string]any{}
		for i := start; i < min(start+limit, n); i++ {
			page.Items = append(page.Items, map[string]any{"name": fmt.Sprintf("d%02d.example", i), "unknownRecipients": "bounce", "version": 1})
		}
		if start+limit < n {
			page.Next = fmt.Sprintf("after/%d", start+limit)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(page)
	})
}

func TestListPages(t *testing.T) {
	api := pagedAPI(t, 7)
	flags := []string{"--url", api.URL, "--token", "tok"}

	out, err := run(t, append([]string{"domains", "list", "--limit", "3"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "d02.example") || strings.Contains(out, "d03.example") || !strings.Contains(out, "more: --cursor after/3") {
		t.Errorf("one page:\n%s", out)
	}
	out, err = run(t, append([]string{"domains", "list", "--limit", "3", "--cursor", "after/6"}, flags...)...)
	if err != nil || !strings.Contains(out, "d06.example") || strings.Contains(out, "more:") {
		t.Errorf("last page: %v\n%s", err, out)
	}

	before := len(api.got())
	out, err = run(t, append([]string{"domains", "list", "--limit", "3", "--all"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(api.got()) - before; got != 3 {
		t.Errorf("--all made %d requests, want 3", got)
	}
	for i := range 7 {
		if !strings.Contains(out, fmt.Sprintf("d%02d.example", i)) {
			t.Errorf("--all is missing d%02d.example:\n%s", i, out)
		}
	}
	if strings.Contains(out, "more:") {
		t.Errorf("--all still says there is more:\n%s", out)
	}

	out, err = run(t, append([]string{"domains", "list", "--limit", "2", "--all", "--json"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	var all struct {
		Items []struct{ Name string }
		Next  *string
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("--all --json is not JSON: %v\n%s", err, out)
	}
	if len(all.Items) != 7 || all.Next != nil {
		t.Errorf("--all --json: %d items, next %v", len(all.Items), all.Next)
	}

	out, err = run(t, append([]string{"domains", "list", "--limit", "2", "--json"}, flags...)...)
	if err != nil || !strings.Contains(out, `"next": "after/2"`) {
		t.Errorf("one page as JSON: %v\n%s", err, out)
	}
}

func TestListStopsOnARepeatedCursor(t *testing.T) {
	api := okAPI(t, 200, `{"items":[{"name":"example.com"}],"next":"same"}`)
	_, err := run(t, "domains", "list", "--all", "--url", api.URL, "--token", "tok")
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("error = %v", err)
	}
	if n := len(api.got()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestBodyFromFlagsMatchesTheAPIFields(t *testing.T) {
	// Every flag a create or update maps must exist on its command.
	root := newRoot()
	for _, tc := range []struct {
		path   []string
		fields []flagField
	}{
		{[]string{"domains", "create"}, domainFields},
		{[]string{"domains", "update"}, domainFields},
		{[]string{"mailboxes", "create"}, mailboxFields},
		{[]string{"mailboxes", "update"}, mailboxFields},
		{[]string{"aliases", "update"}, aliasFields},
		{[]string{"groups", "create"}, groupFields},
		{[]string{"groups", "update"}, groupFields},
	} {
		cmd, _, err := root.Find(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, f := range tc.fields {
			if cmd.Flags().Lookup(f.flag) == nil {
				missing = append(missing, f.flag)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks flags %v", strings.Join(tc.path, " "), missing)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack"
)

// fakeAPI is an admin API that answers from a function and records every request it gets.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
	body                string
}

func newFakeAPI(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), string(b)})
		n := len(f.requests)
		f.mu.Unlock()
		answer(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) got() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func writeProblemJSON(w http.ResponseWriter, status int, doc string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	io.WriteString(w, doc)
}

func testClient(t *testing.T, url string) *apiClient {
	t.Helper()
	c, err := newAPIClient(url, "tok", "")
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = func(context.Context, time.Duration) error { return nil }
	return c
}

func TestAPIErrorIsOneReadableLine(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		header      map[string]string
		body        string
		want        string
	}{
		{
			"invalid field", 400, "application/problem+json", nil,
			`{"type":"https://mailroom.dev/problems/invalid","title":"Invalid request","status":400,"detail":"address: \"ana@\" has no @","field":"address"}`,
			`400 Invalid request: address: "ana@" has no @ (field address)`,
		},
		{
			"cycle", 409, "application/problem+json", nil,
			`{"type":"https://mailroom.dev/problems/conflict","title":"Conflict","status":409,"detail":"sales-apac contains sales","cycle":["sales","sales-apac","sales"]}`,
			`409 Conflict: sales-apac contains sales (cycle sales → sales-apac → sales)`,
		},
		{
			"cycle in the detail", 409, "application/problem+json", nil,
			`{"type":"https://mailroom.dev/problems/conflict","title":"Conflict","status":409,"detail":"adding sales to sales-apac would make a cycle: sales-apac → sales → sales-apac","cycle":["sales-apac","sales","sales-apac"]}`,
			`409 Conflict: adding sales to sales-apac would make a cycle: sales-apac → sales → sales-apac`,
		},
		{
			"every invalid field", 400, "application/problem+json; charset=utf-8", nil,
			`{"type":"https://mailroom.dev/problems/invalid","title":"Invalid request","status":400,"detail":"2 records are invalid",` +
				`"errors":[{"field":"mailboxes.0.address","detail":"missing @"},{"field":"groups.1.type","detail":"must be one of department, project"}]}`,
			"400 Invalid request: 2 records are invalid\n  mailboxes.0.address: missing @\n  groups.1.type: must be one of department, project",
		},
		{
			"no detail", 404, "application/problem+json", nil,
			`{"type":"https://mailroom.dev/problems/not-found","title":"Not found","status":404}`,
			`404 Not found`,
		},
		{
			"API Gateway refuses the token", 401, "application/json",
			map[string]string{"Www-Authenticate": `Bearer scope="" error="invalid_token" error_description="the token has expired"`},
			`{"message":"Unauthorized"}`,
			"401 Unauthorized: the token has expired\n  the token was refused: for the local stack run `mailroom login --role admin` again; for a deployed API pass a valid --token",
		},
		{
			"API Gateway's own error", 500, "application/json", nil, `{"message":"Internal Server Error"}`,
			`500 Internal Server Error`,
		},
		{
			"not the API", 502, "text/html", nil, "<html>bad gateway</html>\n",
			`502 Bad Gateway: <html>bad gateway</html>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := testClient(t, api.URL).do(context.Background(), apiRequest{method: "GET", path: []string{"me"}})
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want an *apiError", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	unavailable := `{"type":"https://mailroom.dev/problems/unavailable","title":"Service unavailable","status":503,"detail":"try again"}`
	tests := []struct {
		name         string
		req          apiRequest
		failures     int // answered with 503 before success
		wantAttempts int
		wantErr      string
	}{
		{"GET", apiRequest{method: "GET", path: []string{"domains"}}, 2, 3, ""},
		{"POST with its key", apiRequest{method: "POST", path: []string{"domains"}, body: []byte(`{"name":"example.com"}`)}, 3, 4, ""},
		{"DELETE", apiRequest{method: "DELETE", path: []string{"domains", "example.com"}}, 1, 2, ""},
		{"gives up", apiRequest{method: "GET", path: []string{"domains"}}, 9, 4, "503 Service unavailable: try again"},
		{"PATCH is not repeated", apiRequest{method: "PATCH", path: []string{"domains", "example.com"}, body: []byte(`{}`)}, 1, 1, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= tt.failures {
					w.Header().Set("Retry-After", "1")
					writeProblemJSON(w, 503, unavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{}`)
			})
			c := testClient(t, api.URL)
			var waits []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			_, err := c.do(context.Background(), tt.req)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			reqs := api.got()
			if len(reqs) != tt.wantAttempts {
				t.Fatalf("%d attempts, want %d", len(reqs), tt.wantAttempts)
			}
			for _, w := range waits {
				if w < time.Second || w > maxRetryWait {
					t.Errorf("waited %s, want Retry-After's 1s at least and at most %s", w, maxRetryWait)
				}
			}
			key := reqs[0].header.Get("Idempotency-Key")
			if tt.req.method == "POST" && key == "" {
				t.Error("POST without an Idempotency-Key")
			}
			for i, r := range reqs {
				if got := r.header.Get("Idempotency-Key"); got != key {
					t.Errorf("attempt %d: Idempotency-Key %q, want the first attempt's %q", i+1, got, key)
				}
				if r.body != string(tt.req.body) {
					t.Errorf("attempt %d: body %q, want %q", i+1, r.body, tt.req.body)
				}
				if got := r.header.Get("Authorization"); got != "Bearer tok" {
					t.Errorf("attempt %d: Authorization %q", i+1, got)
				}
			}
		})
	}
}

// TestRetryAfterLostConnection has the server drop the connection after reading the request, as
// when an answer is lost on the way back: the DELETE is repeated, and its 404 means done.
func TestRetryAfterLostConnection(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		writeProblemJSON(w, 404, `{"type":"https://mailroom.dev/problems/not-found","title":"Not found","status":404}`)
	})
	root := newRoot()
	root.SetArgs([]string{"domains", "delete", "example.com", "--url", api.URL, "--token", "tok"})
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := len(api.got()); got != 2 {
		t.Errorf("%d attempts, want 2", got)
	}
	if !strings.Contains(out.String(), "deleted domain example.com") {
		t.Errorf("output = %q", out.String())
	}

	// A connection refused never reached the API: its 404 is an error.
	refused := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	refusedURL := refused.URL
	refused.Close()
	c := testClient(t, refusedURL)
	_, err := c.do(context.Background(), apiRequest{method: "DELETE", path: []string{"domains", "example.com"}})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the admin API at "+refusedURL) {
		t.Errorf("refused: error = %v", err)
	}
	if mayHaveArrived(err) {
		t.Errorf("a refused connection counts as one the request may have arrived on: %v", err)
	}

	// Without a lost answer, 404 is an error.
	api2 := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeProblemJSON(w, 404, `{"type":"https://mailroom.dev/problems/not-found","title":"Not found","status":404,"detail":"no domain example.com"}`)
	})
	_, err = run(t, "domains", "delete", "example.com", "--url", api2.URL, "--token", "tok")
	if err == nil || err.Error() != "404 Not found: no domain example.com" {
		t.Errorf("error = %v", err)
	}
}

func TestResolveAPIURL(t *testing.T) {
	// A state directory as `mailroom dev` leaves it: stack.json naming live processes and
	// reachable servers, and dev.json naming the API.
	servers := httptest.NewServer(http.NotFoundHandler())
	defer servers.Close()
	running := t.TempDir()
	stack, _ := json.Marshal(map[string]any{
		"endpoints": devstack.Endpoints{DynamoDB: servers.URL, S3: servers.URL},
		"pids":      map[string]int{"mailroom": os.Getpid()},
	})
	os.WriteFile(filepath.Join(running, devstack.StateFile), stack, 0o600)
	os.WriteFile(filepath.Join(running, devInfoFile), []byte(`{"smtp":"127.0.0.1:2525","api":"http://127.0.0.1:8123"}`), 0o600)
	oldDev := t.TempDir() // a stack without the API
	os.WriteFile(filepath.Join(oldDev, devstack.StateFile), stack, 0o600)
	os.WriteFile(filepath.Join(oldDev, devInfoFile), []byte(`{"smtp":"127.0.0.1:2525"}`), 0o600)
	stopped := t.TempDir()

	tests := []struct {
		name, flag, env, state string
		want, wantErr          string
	}{
		{"flag first", "http://flag", "http://env", running, "http://flag", ""},
		{"then the environment", "", "http://env", running, "http://env", ""},
		{"then the local stack", "", "", running, "http://127.0.0.1:8123", ""},
		{"no stack", "", "", stopped, "", "no local stack is running"},
		{"a stack without the API", "", "", oldDev, "", "does not serve the admin API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envAPIURL, tt.env)
			got, err := resolveAPIURL(tt.flag, tt.state)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestResolveToken(t *testing.T) {
	saved := t.TempDir()
	os.WriteFile(filepath.Join(saved, devTokenFile), []byte("saved.token.sig\n"), 0o600)
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, devTokenFile), []byte("\n"), 0o600)
	tests := []struct {
		name, flag, env, state, want string
	}{
		{"flag first", "flag.token", "env.token", saved, "flag.token"},
		{"then the environment", "", "env.token", saved, "env.token"},
		{"then the saved token", "", "", saved, "saved.token.sig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envToken, tt.env)
			got, err := resolveToken(tt.flag, tt.state)
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for name, dir := range map[string]string{"no saved token": t.TempDir(), "empty token file": empty} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(envToken, "")
			_, err := resolveToken("", dir)
			if err == nil || !strings.Contains(err.Error(), "mailroom login --role admin") || !strings.Contains(err.Error(), "--token") {
				t.Errorf("error = %v, want one telling to log in or pass --token", err)
			}
		})
	}
	// The command says the same, before calling anything.
	t.Setenv(envToken, "")
	_, err := run(t, "me", "--url", "http://127.0.0.1:1", "--state", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "mailroom login --role admin") {
		t.Errorf("me without a token: error = %v", err)
	}
}

package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mailroom/mailroom/infra/devstack/apigw"
)

// runLogin runs `mailroom login` with args and returns what it printed on stdout and stderr.
func runLogin(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"login"}, args...))
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestLogin issues a token and has the local front accept it, as `mailroom dev` would.
func TestLogin(t *testing.T) {
	dir := t.TempDir()
	out, note, err := runLogin(t, "--role", "group-manager,auditor", "--role", "auditor",
		"--email", "ana@example.com", "--scope", "mailroom/read  mailroom/write", "--ttl", "1h", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out)
	if strings.Count(token, ".") != 2 || strings.Contains(token, "\n") {
		t.Fatalf("stdout = %q, want the token alone", out)
	}
	saved, err := os.ReadFile(filepath.Join(dir, devTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(saved), token+"\n"; got != want {
		t.Errorf("saved token = %q, want the printed one", got)
	}
	if fi, _ := os.Stat(filepath.Join(dir, devTokenFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", fi.Mode().Perm())
	}
	if strings.Contains(note, token) || !strings.Contains(note, "saved to") {
		t.Errorf("stderr = %q, want a note without the token", note)
	}

	keys, err := apigw.LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got events.APIGatewayV2HTTPRequest
	front, err := apigw.New(apigw.Config{
		Keys: keys,
		Log:  slog.New(slog.DiscardHandler),
		Handler: func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			got = ev
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	front.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("the front refused the token: %d %s", w.Code, w.Header().Get("Www-Authenticate"))
	}
	authz := got.RequestContext.Authorizer.JWT
	want := map[string]string{
		"sub":            "local:ana@example.com",
		"email":          "ana@example.com",
		"mailroom:roles": "[group-manager auditor]",
		"scope":          "mailroom/read mailroom/write",
	}
	for k, v := range want {
		if authz.Claims[k] != v {
			t.Errorf("claim %s = %q, want %q", k, authz.Claims[k], v)
		}
	}
	if strings.Join(authz.Scopes, " ") != "mailroom/read mailroom/write" {
		t.Errorf("scopes = %q", authz.Scopes)
	}
}

func TestLoginPrintOnly(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runLogin(t, "--role", "admin", "--print", "--state", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, ".") != 2 {
		t.Errorf("stdout = %q, want a token", out)
	}
	if _, err := os.Stat(filepath.Join(dir, devTokenFile)); !os.IsNotExist(err) {
		t.Errorf("--print saved the token (stat: %v)", err)
	}
}

func TestLoginRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no role", nil, "--role is required"},
		{"unknown role", []string{"--role", "superuser"}, `unknown role "superuser"`},
		{"unknown among known", []string{"--role", "admin,owner"}, `unknown role "owner"`},
		{"employee without a mailbox", []string{"--role", "employee"}, "--email"},
		{"group manager without a mailbox", []string{"--role", "group-manager"}, "--email"},
		{"not an address", []string{"--role", "admin", "--email", "ana"}, "not an email address"},
		{"no lifetime", []string{"--role", "admin", "--ttl", "0s"}, "--ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out, _, err := runLogin(t, append(tt.args, "--state", dir)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q for a refused login", out)
			}
			if _, err := os.Stat(filepath.Join(dir, devTokenFile)); !os.IsNotExist(err) {
				t.Error("a refused login saved a token")
			}
		})
	}
}

package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mailroom/mailroom/shared/fault"
)

var testNow = time.Date(2026, 3, 4, 9, 15, 2, 511_000_000, time.UTC)

// fakeFunction stands in for the admin function: it records the events it gets and answers
// with resp, err or a panic.
type fakeFunction struct {
	mu     sync.Mutex
	events []events.APIGatewayV2HTTPRequest
	resp   events.APIGatewayV2HTTPResponse
	err    error
	panics bool
}

func (h *fakeFunction) Handle(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	if h.panics {
		panic("boom")
	}
	return h.resp, h.err
}

// okFunction answers every request with an empty 200.
func okFunction() *fakeFunction {
	return &fakeFunction{resp: events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}}
}

func (h *fakeFunction) calls() []events.APIGatewayV2HTTPRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.events
}

func newFront(t *testing.T, h *fakeFunction, mods ...func(*Config)) *Front {
	t.Helper()
	keys, _ := testKeys(t)
	cfg := Config{
		Handler: h.Handle,
		Keys:    keys,
		Now:     func() time.Time { return testNow },
		NewID:   func() string { return "LV7fzho-PHcEJPw=" },
		Log:     slog.New(slog.DiscardHandler),
	}
	for _, m := range mods {
		m(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// token issues a development token for an admin, valid at testNow.
func token(t *testing.T, mods ...func(*Claims)) string {
	t.Helper()
	keys, _ := testKeys(t)
	c := Claims{Subject: "sub-1", Email: "it@example.com", Roles: []string{"admin"}, IssuedAt: testNow.Add(-time.Hour)}
	for _, m := range mods {
		m(&c)
	}
	s, err := keys.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign signs arbitrary claims with k, for tokens Issue would never make.
func sign(t *testing.T, k *Keys, method jwt.SigningMethod, key any, claims jwt.MapClaims, kid bool) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid {
		tok.Header["kid"] = k.KeyID()
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	return jwt.MapClaims{"sub": "sub-1", "iss": DefaultIssuer, "aud": DefaultAudience,
		"iat": testNow.Add(-time.Hour).Unix(), "exp": testNow.Add(time.Hour).Unix()}
}

func newRequest(method, target string, body io.Reader) *http.Request {
	r := httptest.NewRequest(method, target, body)
	r.Host = "127.0.0.1:8080"
	r.RemoteAddr = "192.0.2.1:50123"
	return r
}

func TestEvent(t *testing.T) {
	tok := token(t)
	claims := map[string]string{
		"sub": "sub-1", "email": "it@example.com", "mailroom:roles": "[admin]",
		"iss": DefaultIssuer, "aud": DefaultAudience,
		"iat": strconv.FormatInt(testNow.Add(-time.Hour).Unix(), 10),
		"exp": strconv.FormatInt(testNow.Add(11*time.Hour).Unix(), 10),
	}
	base := func(method, path string) events.APIGatewayV2HTTPRequest {
		return events.APIGatewayV2HTTPRequest{
			Version:  "2.0",
			RouteKey: "$default",
			RawPath:  path,
			Headers: map[string]string{
				"accept":            "application/json",
				"authorization":     "Bearer " + tok,
				"host":              "127.0.0.1:8080",
				"user-agent":        "mailroom-cli/0.1.0",
				"x-amzn-trace-id":   "Root=1-65e5a116-000000000000000000000001",
				"x-forwarded-for":   "192.0.2.1",
				"x-forwarded-proto": "http",
			},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey:  "$default",
				AccountID: "000000000000",
				Stage:     "$default",
				RequestID: "LV7fzho-PHcEJPw=",
				Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
					JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
				},
				APIID:        "local",
				DomainName:   "127.0.0.1",
				DomainPrefix: "127.0.0.1",
				Time:         "04/Mar/2026:09:15:02 +0000",
				TimeEpoch:    testNow.UnixMilli(),
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
					Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1", UserAgent: "mailroom-cli/0.1.0",
				},
			},
		}
	}
	binary := []byte("From a@b\x00\xff\xfe")
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        []byte
		extra       http.Header
		want        func(ev *events.APIGatewayV2HTTPRequest)
	}{
		{
			name:   "GET with a query",
			method: "GET", target: "/mailboxes?limit=10&status=active&status=suspended&q=a%2Bb+c&cursor=",
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.RawQueryString = "limit=10&status=active&status=suspended&q=a%2Bb+c&cursor="
				ev.QueryStringParameters = map[string]string{
					"limit": "10", "status": "active,suspended", "q": "a+b c", "cursor": "",
				}
			},
		},
		{
			name:   "POST with a JSON body",
			method: "POST", target: "/mailboxes", contentType: "application/json; charset=utf-8",
			body: []byte(`{"address":"ana@example.com","displayName":"Ana Lim"}`),
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.Headers["content-type"] = "application/json; charset=utf-8"
				ev.Headers["content-length"] = "53"
				ev.Body = `{"address":"ana@example.com","displayName":"Ana Lim"}`
			},
		},
		{
			name:   "a binary body is base64",
			method: "POST", target: "/directory/import", contentType: "application/octet-stream", body: binary,
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.Headers["content-type"] = "application/octet-stream"
				ev.Headers["content-length"] = strconv.Itoa(len(binary))
				ev.Body = base64.StdEncoding.EncodeToString(binary)
				ev.IsBase64Encoded = true
			},
		},
		{
			name:   "merge patch is not one of the types API Gateway passes as text",
			method: "PATCH", target: "/mailboxes/ana@example.com", contentType: "application/merge-patch+json",
			body: []byte(`{"locale":"ms-MY"}`),
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.Headers["content-type"] = "application/merge-patch+json"
				ev.Headers["content-length"] = "18"
				ev.Body = base64.StdEncoding.EncodeToString([]byte(`{"locale":"ms-MY"}`))
				ev.IsBase64Encoded = true
			},
		},
		{
			name:   "CSV is text",
			method: "POST", target: "/directory/import?kind=domains", contentType: "text/csv", body: []byte("name\nexample.com\n"),
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.RawQueryString = "kind=domains"
				ev.QueryStringParameters = map[string]string{"kind": "domains"}
				ev.Headers["content-type"] = "text/csv"
				ev.Headers["content-length"] = "17"
				ev.Body = "name\nexample.com\n"
			},
		},
		{
			name:   "repeated headers are joined with commas, cookies get their own field",
			method: "GET", target: "/me",
			extra: http.Header{
				"X-Custom":        {"a", "b"},
				"X-Forwarded-For": {"198.51.100.7"},
				"Cookie":          {"session=1; theme=dark", "lang=ms"},
			},
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.Headers["x-custom"] = "a,b"
				ev.Headers["x-forwarded-for"] = "198.51.100.7, 192.0.2.1"
				ev.Cookies = []string{"session=1", "theme=dark", "lang=ms"}
			},
		},
		{
			name:   "the path arrives decoded",
			method: "GET", target: "/mailboxes/ana%40example.com",
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.RawPath = "/mailboxes/ana@example.com"
				ev.RequestContext.HTTP.Path = "/mailboxes/ana@example.com"
			},
		},
		{
			name:   "and cut at a decoded question mark",
			method: "GET", target: "/mailboxes/a%3Fb@example.com?x=1",
			want: func(ev *events.APIGatewayV2HTTPRequest) {
				ev.RawPath = "/mailboxes/a"
				ev.RequestContext.HTTP.Path = "/mailboxes/a"
				ev.RawQueryString = "x=1"
				ev.QueryStringParameters = map[string]string{"x": "1"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := okFunction()
			f := newFront(t, fn)
			r := newRequest(tt.method, tt.target, bytes.NewReader(tt.body))
			r.Header.Set("Accept", "application/json")
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("User-Agent", "mailroom-cli/0.1.0")
			r.Header.Set("X-Amzn-Trace-Id", "Root=1-65e5a116-000000000000000000000001")
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			for k, vs := range tt.extra {
				r.Header[k] = vs
			}
			r.Header.Del("Content-Length") // httptest sets none; the front adds its own
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, body %s", w.Code, w.Body)
			}
			calls := fn.calls()
			if len(calls) != 1 {
				t.Fatalf("handler called %d times, want once", len(calls))
			}
			path, _, _ := strings.Cut(tt.target, "?")
			want := base(tt.method, path)
			tt.want(&want)
			if got := calls[0]; !reflect.DeepEqual(got, want) {
				t.Errorf("event:\n%s\nwant:\n%s", asJSON(got), asJSON(want))
			}
		})
	}
}

func TestEventTraceAndPort(t *testing.T) {
	fn := okFunction()
	f := newFront(t, fn)
	r := newRequest("GET", "/me", nil)
	r.Header.Set("Authorization", "Bearer "+token(t))
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
	f.ServeHTTP(httptest.NewRecorder(), r)
	h := fn.calls()[0].Headers
	if got := h["x-amzn-trace-id"]; !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`).MatchString(got) {
		t.Errorf("x-amzn-trace-id = %q, want one API Gateway would add", got)
	}
	if got, want := h["x-forwarded-port"], "8080"; got != want {
		t.Errorf("x-forwarded-port = %q, want %q", got, want)
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := randomID()
		if len(id) != 16 || !strings.HasSuffix(id, "=") {
			t.Fatalf("id %q is not shaped like API Gateway's", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestAuthorizerRefuses(t *testing.T) {
	keys, other := testKeys(t)
	without := func(name string) jwt.MapClaims {
		c := validClaims()
		delete(c, name)
		return c
	}
	with := func(c jwt.MapClaims, name string, v any) jwt.MapClaims {
		c[name] = v
		return c
	}
	tests := []struct {
		name          string
		authorization string
		want          string // www-authenticate
	}{
		{"no Authorization header", "", `Bearer`},
		{"Bearer and nothing", "Bearer ", `Bearer`},
		{"not a JWT", "Bearer not.a.jwt", `the token is not a valid JWT`},
		{"expired", "Bearer " + token(t, func(c *Claims) { c.IssuedAt = testNow.Add(-13 * time.Hour) }), `the token has expired`},
		{"not valid yet", "Bearer " + token(t, func(c *Claims) { c.NotBefore = testNow.Add(time.Minute) }), `the token is not valid yet`},
		{"no expiry", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, without("exp"), true), `the token has no expiry`},
		{"wrong audience", "Bearer " + token(t, func(c *Claims) { c.Audience = "someone-else" }), `the token does not have a valid audience`},
		{"no audience and a wrong client_id", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, with(without("aud"), "client_id", "x"), true), `the token does not have a valid audience`},
		{"neither audience nor client_id", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, without("aud"), true), `the token does not have a valid audience`},
		{"no issuer", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, without("iss"), true), `the token does not have a valid issuer`},
		{"wrong issuer", "Bearer " + token(t, func(c *Claims) { c.Issuer = "https://evil.example" }), `the token does not have a valid issuer`},
		{"signed by another key", "Bearer " + sign(t, other, jwt.SigningMethodRS256, other.private, validClaims(), true), `the token's signature could not be verified with the issuer's keys`},
		{"no kid", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, validClaims(), false), `the token's signature could not be verified with the issuer's keys`},
		{"alg none", "Bearer " + sign(t, keys, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims(), true), `the token's signature could not be verified with the issuer's keys`},
		{"HS256 keyed with the public key", "Bearer " + sign(t, keys, jwt.SigningMethodHS256, []byte(keys.JWKS()), validClaims(), true), `the token's signature could not be verified with the issuer's keys`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := okFunction()
			f := newFront(t, fn)
			r := newRequest("GET", "/me", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			if got, want := w.Code, http.StatusUnauthorized; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := w.Body.String(), `{"message":"Unauthorized"}`; got != want {
				t.Errorf("body = %s, want %s", got, want)
			}
			want := tt.want
			if want != "Bearer" {
				want = `Bearer scope="" error="invalid_token" error_description="` + tt.want + `"`
			}
			if got := w.Header().Get("Www-Authenticate"); got != want {
				t.Errorf("www-authenticate = %s\nwant               %s", got, want)
			}
			if n := len(fn.calls()); n != 0 {
				t.Errorf("handler called %d times for a refused request", n)
			}
		})
	}
}

func TestAuthorizerAccepts(t *testing.T) {
	keys, _ := testKeys(t)
	aud := validClaims()
	aud["aud"] = []string{"other", DefaultAudience}
	clientID := validClaims()
	delete(clientID, "aud")
	clientID["client_id"] = DefaultAudience
	tests := []struct {
		name, authorization string
	}{
		{"Bearer token", "Bearer " + token(t)},
		{"lower-case scheme", "bearer " + token(t)},
		{"the token alone", token(t)},
		{"one of several audiences", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, aud, true)},
		{"client_id when there is no aud", "Bearer " + sign(t, keys, jwt.SigningMethodRS256, keys.private, clientID, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := okFunction()
			f := newFront(t, fn)
			r := newRequest("GET", "/me", nil)
			r.Header.Set("Authorization", tt.authorization)
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			if w.Code != http.StatusOK || len(fn.calls()) != 1 {
				t.Fatalf("status = %d (%s), handler calls %d", w.Code, w.Header().Get("Www-Authenticate"), len(fn.calls()))
			}
			if got := fn.calls()[0].RequestContext.Authorizer.JWT.Claims["sub"]; got != "sub-1" {
				t.Errorf("claims sub = %q", got)
			}
		})
	}
}

func TestClaimsRendering(t *testing.T) {
	keys, _ := testKeys(t)
	c := validClaims()
	c["mailroom:roles"] = []string{"group-manager", "employee"}
	c["cognito:groups"] = []string{"mailroom-admins"}
	c["empty"] = []string{}
	c["nested"] = []any{[]string{"x", "y"}, 1}
	c["address"] = map[string]any{"city": "Seattle", "zip": "98101"}
	c["email_verified"] = true
	c["auth_time"] = 1709542800
	c["ratio"] = 1.5
	c["version"] = "42"
	c["nothing"] = nil
	c["scope"] = "mailroom/read  mailroom/write"
	tok := sign(t, keys, jwt.SigningMethodRS256, keys.private, c, true)

	fn := okFunction()
	f := newFront(t, fn)
	r := newRequest("GET", "/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	f.ServeHTTP(httptest.NewRecorder(), r)
	if len(fn.calls()) != 1 {
		t.Fatal("handler not called")
	}
	jwtCtx := fn.calls()[0].RequestContext.Authorizer.JWT
	want := map[string]string{
		"sub": "sub-1", "iss": DefaultIssuer, "aud": DefaultAudience,
		"iat":            strconv.FormatInt(testNow.Add(-time.Hour).Unix(), 10),
		"exp":            strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10),
		"mailroom:roles": "[group-manager employee]",
		"cognito:groups": "[mailroom-admins]",
		"empty":          "[]",
		"nested":         "[[x y] 1]",
		"address":        "map[city:Seattle zip:98101]",
		"email_verified": "true",
		"auth_time":      "1709542800",
		"ratio":          "1.5",
		"version":        "42",
		"nothing":        "<nil>",
		"scope":          "mailroom/read  mailroom/write",
	}
	for k := range want {
		if got := jwtCtx.Claims[k]; got != want[k] {
			t.Errorf("claim %s = %q, want %q", k, got, want[k])
		}
	}
	if len(jwtCtx.Claims) != len(want) {
		t.Errorf("claims = %v, want %v", jwtCtx.Claims, want)
	}
	if got, want := jwtCtx.Scopes, []string{"mailroom/read", "mailroom/write"}; !reflect.DeepEqual(got, want) {
		t.Errorf("scopes = %q, want %q", got, want)
	}
}

func TestPublicRoutes(t *testing.T) {
	public := func(c *Config) {
		c.Public = func(method, path string) bool { return method == "GET" && path == "/openapi.yaml" }
	}
	tests := []struct {
		name, method, path, authorization string
		want                              int
	}{
		{"public route without a token", "GET", "/openapi.yaml", "", http.StatusOK},
		{"public route with a broken token", "GET", "/openapi.yaml", "Bearer broken", http.StatusOK},
		{"same path, other method", "POST", "/openapi.yaml", "", http.StatusUnauthorized},
		{"other path", "GET", "/me", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := okFunction()
			f := newFront(t, fn, public)
			r := newRequest(tt.method, tt.path, nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d", w.Code, tt.want)
			}
			if tt.want == http.StatusOK && fn.calls()[0].RequestContext.Authorizer != nil {
				t.Error("a route without an authorizer got an authorizer context")
			}
		})
	}
}

func TestResponse(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff}
	tests := []struct {
		name        string
		fn          *fakeFunction
		wantStatus  int
		wantHeaders http.Header // nil value: the header must be absent
		wantBody    string
	}{
		{
			name: "status, headers and body",
			fn: &fakeFunction{resp: events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusCreated,
				Headers:    map[string]string{"content-type": "application/json", "ETag": `"3"`, "Location": "/mailboxes/ana@example.com"},
				Body:       `{"address":"ana@example.com"}`,
			}},
			wantStatus: http.StatusCreated,
			wantHeaders: http.Header{
				"Content-Type": {"application/json"}, "Etag": {`"3"`}, "Location": {"/mailboxes/ana@example.com"},
				"Apigw-Requestid": {"LV7fzho-PHcEJPw="},
			},
			wantBody: `{"address":"ana@example.com"}`,
		},
		{
			name: "a base64 body is decoded",
			fn: &fakeFunction{resp: events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusOK, Headers: map[string]string{"Content-Type": "image/png"},
				Body: base64.StdEncoding.EncodeToString(binary), IsBase64Encoded: true,
			}},
			wantStatus:  http.StatusOK,
			wantHeaders: http.Header{"Content-Type": {"image/png"}},
			wantBody:    string(binary),
		},
		{
			name: "cookies become Set-Cookie headers",
			fn: &fakeFunction{resp: events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusNoContent, Cookies: []string{"a=1; Path=/; HttpOnly", "b=2"},
			}},
			wantStatus:  http.StatusNoContent,
			wantHeaders: http.Header{"Set-Cookie": {"a=1; Path=/; HttpOnly", "b=2"}},
		},
		{
			name: "multiValueHeaders are dropped, as format 2.0 ignores them",
			fn: &fakeFunction{resp: events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusOK, Headers: map[string]string{"Vary": "Accept"},
				MultiValueHeaders: map[string][]string{"X-Multi": {"1", "2"}},
			}},
			wantStatus:  http.StatusOK,
			wantHeaders: http.Header{"Vary": {"Accept"}, "X-Multi": nil},
		},
		{
			name:        "no content type is sent when the function gives none",
			fn:          &fakeFunction{resp: events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: "<html>"}},
			wantStatus:  http.StatusOK,
			wantHeaders: http.Header{"Content-Type": nil},
			wantBody:    "<html>",
		},
		{
			name:        "a function error is a bare 500",
			fn:          &fakeFunction{err: errors.New("dynamodb: connection refused")},
			wantStatus:  http.StatusInternalServerError,
			wantHeaders: http.Header{"Content-Type": {"application/json"}},
			wantBody:    `{"message":"Internal Server Error"}`,
		},
		{
			name:       "so is a panic",
			fn:         &fakeFunction{panics: true},
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"message":"Internal Server Error"}`,
		},
		{
			name:       "and a response without a status code",
			fn:         &fakeFunction{resp: events.APIGatewayV2HTTPResponse{Body: "{}"}},
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"message":"Internal Server Error"}`,
		},
		{
			name: "and a body that claims base64 but is not",
			fn: &fakeFunction{resp: events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusOK, Body: "not base64!", IsBase64Encoded: true,
			}},
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"message":"Internal Server Error"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFront(t, tt.fn)
			r := newRequest("GET", "/me", nil)
			r.Header.Set("Authorization", "Bearer "+token(t))
			w := httptest.NewRecorder()
			f.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			for k, want := range tt.wantHeaders {
				// A nil value is how net/http is told to send no such header at all.
				got := w.Result().Header[k]
				if want == nil && len(got) > 0 {
					t.Errorf("header %s = %q, want none", k, got)
				} else if want != nil && !reflect.DeepEqual(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
		})
	}
}

func TestMaxBody(t *testing.T) {
	tests := []struct {
		size int
		want int
	}{
		{10, http.StatusOK},
		{11, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		fn := okFunction()
		f := newFront(t, fn, func(c *Config) { c.MaxBody = 10 })
		r := newRequest("POST", "/directory/import", strings.NewReader(strings.Repeat("x", tt.size)))
		r.Header.Set("Authorization", "Bearer "+token(t))
		w := httptest.NewRecorder()
		f.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%d-byte body: status = %d, want %d", tt.size, w.Code, tt.want)
		}
		if tt.want != http.StatusOK && len(fn.calls()) != 0 {
			t.Errorf("%d-byte body reached the handler", tt.size)
		}
	}
}

func TestJWKSEndpoint(t *testing.T) {
	keys, _ := testKeys(t)
	fn := okFunction()
	f := newFront(t, fn)
	w := httptest.NewRecorder()
	f.ServeHTTP(w, newRequest("GET", JWKSPath, nil))
	if w.Code != http.StatusOK || w.Body.String() != string(keys.JWKS()) {
		t.Errorf("GET %s = %d %s", JWKSPath, w.Code, w.Body)
	}
	if len(fn.calls()) != 0 {
		t.Error("the JWKS request reached the handler")
	}
}

func TestNewRequiresHandlerAndKeys(t *testing.T) {
	keys, _ := testKeys(t)
	fn := (&fakeFunction{}).Handle
	tests := []struct {
		name, field string
		cfg         Config
	}{
		{"no handler", "Handler", Config{Keys: keys}},
		{"no keys", "Keys", Config{Handler: fn}},
		{"negative body limit", "MaxBody", Config{Handler: fn, Keys: keys, MaxBody: -1}},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Invalid || fe.Field != tt.field {
			t.Errorf("%s: New = %v, want an invalid %s", tt.name, err, tt.field)
		}
	}
}

// TestServe runs the front on a real loopback port, as `mailroom dev` does.
func TestServe(t *testing.T) {
	var logs bytes.Buffer
	fn := &fakeFunction{resp: events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: "ok"}}
	f := newFront(t, fn, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.NewID = randomID
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Serve(l) }()

	tok := token(t)
	for _, auth := range []string{"Bearer " + tok, "Bearer " + tok + "x"} {
		req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+"/me", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got, want := fn.calls()[0].Headers["x-forwarded-port"], strconv.Itoa(l.Addr().(*net.TCPAddr).Port); got != want {
		t.Errorf("x-forwarded-port = %q, want %q", got, want)
	}
	if strings.Contains(logs.String(), tok[strings.LastIndex(tok, ".")+1:]) || strings.Contains(logs.String(), tok[:40]) {
		t.Errorf("the log shows the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "sub=sub-1") {
		t.Errorf("the log does not say who asked:\n%s", logs.String())
	}

	f.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Serve returned %v, want ErrClosed", err)
	}
}

// publicListener claims an address that is not loopback without binding one.
type publicListener struct {
	net.Listener
	closed bool
}

func (l *publicListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 8080}
}
func (l *publicListener) Close() error { l.closed = true; return nil }

func TestServeRefusesANonLoopbackListener(t *testing.T) {
	f := newFront(t, &fakeFunction{})
	l := &publicListener{}
	err := f.Serve(l)
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.Invalid || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Serve = %v, want an invalid-listener error naming loopback", err)
	}
	if !l.closed {
		t.Error("the refused listener was left open")
	}
}

func asJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mailroom/mailroom/infra/devstack"
)

// Environment variables that stand in for --url and --token.
const (
	envAPIURL = "MAILROOM_API_URL"
	envToken  = "MAILROOM_TOKEN"
)

// apiClient calls the admin API (docs/admin-api.md) for one command invocation.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
	// idempotencyKey goes with every POST of the invocation, so that a POST retried after a lost
	// answer is done once. Each command makes at most one POST.
	idempotencyKey string

	// retries is how many times an idempotent request is repeated after a connection error or a
	// 503; backoff is the wait before the first repeat, doubled for each one after.
	retries int
	backoff time.Duration
	sleep   func(ctx context.Context, d time.Duration) error
}

// maxRetryWait bounds the wait a Retry-After header can ask for.
const maxRetryWait = 10 * time.Second

func newAPIClient(base, token, idempotencyKey string) (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API URL %q: want an http or https URL such as http://127.0.0.1:8080", base)
	}
	if idempotencyKey == "" {
		idempotencyKey = rand.Text()
	}
	return &apiClient{
		base:           u,
		token:          token,
		http:           &http.Client{Timeout: 2 * time.Minute},
		idempotencyKey: idempotencyKey,
		retries:        3,
		backoff:        250 * time.Millisecond,
		sleep:          sleepCtx,
	}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// resolveAPIURL finds the API: the --url flag, else MAILROOM_API_URL, else the API `mailroom dev`
// serves, which it names in dev.json in the state directory.
func resolveAPIURL(flag, stateDir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := os.Getenv(envAPIURL); v != "" {
		return v, nil
	}
	dir, err := stateDirOr(stateDir)
	if err != nil {
		return "", fmt.Errorf("no admin API URL: pass --url or set %s (%v)", envAPIURL, err)
	}
	_, info, err := runningDev(dir)
	if err != nil {
		return "", fmt.Errorf("%w; for another API, pass --url or set %s", err, envAPIURL)
	}
	if info.API == "" {
		return "", fmt.Errorf("the local stack in %s does not serve the admin API: restart `make dev`, or pass --url", dir)
	}
	return info.API, nil
}

// resolveToken finds the bearer token: the --token flag, else MAILROOM_TOKEN, else the one
// `mailroom login` saved in the state directory.
func resolveToken(flag, stateDir string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := strings.TrimSpace(os.Getenv(envToken)); v != "" {
		return v, nil
	}
	missing := "no token: run `mailroom login --role admin` for the local stack, or pass --token (or set " + envToken + ") for a deployed API"
	dir, err := stateDirOr(stateDir)
	if err != nil {
		return "", errors.New(missing)
	}
	b, err := os.ReadFile(filepath.Join(dir, devTokenFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", errors.New(missing)
	}
	if err != nil {
		return "", fmt.Errorf("read the saved token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", errors.New(missing)
	}
	return token, nil
}

func stateDirOr(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return devstack.DefaultStateDir()
}

// apiRequest is one call.
type apiRequest struct {
	method string
	path   []string // segments, escaped by the client
	query  url.Values
	body   []byte
	// contentType of body; application/json when empty and there is a body.
	contentType string
	// ifMatch is a resource version for If-Match; empty sends none.
	ifMatch string
}

// apiResponse is a successful answer.
type apiResponse struct {
	status int
	header http.Header
	body   []byte
	// uncertain is true when an earlier attempt failed after the request may have reached the
	// API, so this answer may describe the world after that attempt's change (a repeated
	// DELETE answers 404).
	uncertain bool
}

// replayed reports whether the API answered with the remembered response to an earlier request
// with the same Idempotency-Key.
func (r *apiResponse) replayed() bool { return r.header.Get("Idempotent-Replayed") == "true" }

// do sends r, repeating it when that is safe: GET and DELETE, and POST with its Idempotency-Key,
// after a connection error or a 503. An error answer is returned as *apiError.
func (c *apiClient) do(ctx context.Context, r apiRequest) (*apiResponse, error) {
	u := c.base.JoinPath(escapeSegments(r.path)...)
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	// Every POST carries the invocation's Idempotency-Key, so every POST may be repeated.
	retryable := r.method == http.MethodGet || r.method == http.MethodDelete || r.method == http.MethodPost
	uncertain := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.method, u.String(), bytes.NewReader(r.body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Accept", "application/json, application/problem+json, text/csv")
		if r.body != nil {
			ct := r.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
		}
		if r.method == http.MethodPost {
			req.Header.Set("Idempotency-Key", c.idempotencyKey)
		}
		if r.ifMatch != "" {
			req.Header.Set("If-Match", `"`+r.ifMatch+`"`)
		}

		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if retryable && attempt < c.retries {
				uncertain = uncertain || mayHaveArrived(err)
				if err := c.sleep(ctx, c.backoff<<attempt); err != nil {
					return nil, err
				}
				continue
			}
			// url.Error repeats the method and URL; the URL is what the user needs to check.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.base, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			if retryable && attempt < c.retries {
				uncertain = true
				if err := c.sleep(ctx, c.backoff<<attempt); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("reading the admin API's answer: %w", err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && retryable && attempt < c.retries {
			wait := c.backoff << attempt
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && time.Duration(s)*time.Second > wait {
				wait = min(time.Duration(s)*time.Second, maxRetryWait)
			}
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 400 {
			e := newAPIError(resp, body)
			e.Uncertain = uncertain
			return nil, e
		}
		return &apiResponse{status: resp.StatusCode, header: resp.Header, body: body, uncertain: uncertain}, nil
	}
}

// mayHaveArrived reports whether a request that failed with err may have reached the API: any
// failure after the connection was made.
func mayHaveArrived(err error) bool {
	var oe *net.OpError
	return !errors.As(err, &oe) || oe.Op != "dial"
}

func escapeSegments(segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = url.PathEscape(s)
	}
	return out
}

// getJSON GETs path and decodes the answer into v; it returns the raw answer too, for --json.
func (c *apiClient) getJSON(ctx context.Context, path []string, q url.Values, v any) ([]byte, error) {
	resp, err := c.do(ctx, apiRequest{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return nil, err
	}
	return resp.body, decodeAnswer(resp.body, v)
}

func decodeAnswer(body []byte, v any) error {
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the admin API's answer is not the JSON expected: %w", err)
	}
	return nil
}

// problem is an RFC 9457 problem document with the admin API's extensions.
type problem struct {
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Status int      `json:"status"`
	Detail string   `json:"detail"`
	Field  string   `json:"field"`
	Cycle  []string `json:"cycle"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// apiError is an error answer from the API, or from API Gateway in front of it.
type apiError struct {
	Status  int
	Problem problem
	// Message is the answer when it is not a problem document: API Gateway's own
	// {"message": "…"}, or the start of whatever else came back.
	Message string
	// Challenge is the WWW-Authenticate error_description of a refused token.
	Challenge string
	// Uncertain is apiResponse.uncertain: an earlier attempt may have made a change.
	Uncertain bool
}

func newAPIError(resp *http.Response, body []byte) *apiError {
	e := &apiError{Status: resp.StatusCode}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == "application/problem+json" && json.Unmarshal(body, &e.Problem) == nil:
	case mt == "application/json":
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &m) == nil {
			e.Message = m.Message
		}
	default:
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	if d := challengeDescription(resp.Header.Get("Www-Authenticate")); d != "" {
		e.Challenge = d
	}
	return e
}

// challengeDescription is error_description from a Bearer challenge (RFC 6750 §3).
func challengeDescription(h string) string {
	_, rest, ok := strings.Cut(h, `error_description="`)
	if !ok {
		return ""
	}
	d, _, _ := strings.Cut(rest, `"`)
	return d
}

// Error is one readable line: the status, the problem's title and detail, the field at fault and
// a cycle; then one indented line per field error when there are several.
func (e *apiError) Error() string {
	var b strings.Builder
	p := e.Problem
	title := p.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	fmt.Fprintf(&b, "%d %s", e.Status, title)
	detail := p.Detail
	if detail == "" && e.Message != "" && e.Message != title {
		detail = e.Message
	}
	if detail == "" {
		detail = e.Challenge
	}
	if detail != "" {
		b.WriteString(": " + detail)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, " (field %s)", p.Field)
	}
	// The cycle is the path to break; the detail may already show it.
	if cycle := strings.Join(p.Cycle, " → "); cycle != "" && !strings.Contains(detail, cycle) {
		fmt.Fprintf(&b, " (cycle %s)", cycle)
	}
	for _, fe := range p.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Field, fe.Detail)
	}
	if e.Status == http.StatusUnauthorized {
		b.WriteString("\n  the token was refused: for the local stack run `mailroom login --role admin` again; for a deployed API pass a valid --token")
	}
	return b.String()
}

// Package apitest checks HTTP requests and responses against the admin API's OpenAPI document
// (api/openapi.yaml), so that a handler test fails when the handler and the document disagree.
// Handler tests wrap the handler in Middleware, or call Check on each exchange.
package apitest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/mailroom/mailroom/api"
)

// Validator checks exchanges against api.Document. It is safe for concurrent use, so parallel
// tests can share one.
type Validator struct {
	router routers.Router
	ops    []string
}

// load parses and validates the document once per test binary: every handler test builds a
// Validator, and the document does not change while they run.
var load = sync.OnceValues(func() (*Validator, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Document)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.yaml does not load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	// Route on paths alone: tests reach the handler at whatever host httptest picks, and an
	// absolute server URL in the document would make every request miss.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", err)
	}
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return &Validator{router: router, ops: ops}, nil
})

// options are kin-openapi's settings for every check.
func options() *openapi3filter.Options {
	o := &openapi3filter.Options{
		// Tokens are API Gateway's business and the handler tests' own; here any request is
		// taken as authenticated, so the check is about shapes only.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		// A status the document does not list for the operation is drift like any other.
		IncludeResponseStatus: true,
		// The API accepts read-only fields in requests and ignores them (docs/admin-api.md).
		ExcludeReadOnlyValidations: true,
		// Validation must not rewrite the request it is given.
		SkipSettingDefaults: true,
		// One failing test should show every disagreement, not the first.
		MultiError: true,
	}
	o.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		// The default message repeats the whole schema and value, which buries the reason.
		// The JSON Schema 2020-12 validator's reasons start with a line naming kin-openapi's
		// internal schema URL, then list each failure with its location.
		if first, rest, ok := strings.Cut(err.Reason, "\n"); ok && strings.HasPrefix(first, "jsonschema validation failed") {
			return "\n" + rest
		}
		if p := err.JSONPointer(); len(p) > 0 {
			return "at /" + strings.Join(p, "/") + ": " + err.Reason
		}
		return err.Reason
	})
	return o
}

// New returns a Validator for api.Document, failing t if the document does not load or is not a
// valid OpenAPI document.
func New(t testing.TB) *Validator {
	t.Helper()
	v, err := load()
	if err != nil {
		t.Fatalf("apitest: %v", err)
		return nil
	}
	return v
}

// Operations lists the documented operations as "METHOD /path/{param}", sorted, for comparing
// with the handler's routes.
func (v *Validator) Operations() []string { return slices.Clone(v.ops) }

// Check validates one exchange: that the request matches a documented operation (path,
// parameters, headers, body) and that the response is one the operation documents (status,
// headers, content type, body). reqBody is the request body as sent; req.Body is not read.
//
// A 4xx response means the handler refused the request, and tests send invalid requests on
// purpose to see it do so; then only the response is checked, as by CheckResponse. For any other
// status, a request the document calls invalid means the handler accepted what it should refuse.
//
// A request for a path or method the document lacks is reported, unless the handler also said
// there is no such thing (404 for an unknown path, 405 for an unknown method).
func (v *Validator) Check(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) {
	t.Helper()
	v.check(t, req, reqBody, status, header, respBody, status < 400 || status >= 500)
}

// CheckResponse validates only that the response is one the request's operation documents, for
// requests a test makes invalid on purpose.
func (v *Validator) CheckResponse(t testing.TB, req *http.Request, status int, header http.Header, respBody []byte) {
	t.Helper()
	v.check(t, req, nil, status, header, respBody, false)
}

func (v *Validator) check(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte, checkRequest bool) {
	t.Helper()
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.ContentLength = int64(len(reqBody))

	route, params, err := v.router.FindRoute(r)
	if err != nil {
		if errors.Is(err, routers.ErrPathNotFound) && status == http.StatusNotFound ||
			errors.Is(err, routers.ErrMethodNotAllowed) && status == http.StatusMethodNotAllowed {
			return
		}
		t.Errorf("apitest: %s %s: api/openapi.yaml has no such operation (%v); the handler answered %d",
			r.Method, r.URL.Path, err, status)
		return
	}
	// The router matches the escaped path, so that %2F stays inside a parameter, and hands the
	// parameters over still escaped; the handler sees them unescaped (r.PathValue), and so must
	// the schemas.
	for name, value := range params {
		if unescaped, err := url.PathUnescape(value); err == nil {
			params[name] = unescaped
		}
	}
	op := fmt.Sprintf("%s (%s %s)", route.Operation.OperationID, route.Method, route.Path)
	opts := options()

	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if checkRequest {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("apitest: %s: the handler answered %d to a request api/openapi.yaml calls invalid:\n%v",
				op, status, err)
		}
	}

	if header == nil {
		header = http.Header{}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: opts}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("apitest: %s: response %d does not match api/openapi.yaml:\n%v", op, status, err)
		return
	}
	// kin-openapi ignores the body of a response documented without content; a 204 with a body
	// is still a disagreement.
	if res := route.Operation.Responses.Status(status); res != nil && res.Value != nil &&
		len(res.Value.Content) == 0 && len(bytes.TrimSpace(respBody)) > 0 {
		t.Errorf("apitest: %s: response %d has a body, but api/openapi.yaml documents none", op, status)
	}
}

// Middleware returns next wrapped so that every request it serves is checked, as by Check, and
// reported on t; the response is passed on unchanged.
func (v *Validator) Middleware(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Helper()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("apitest: %s %s: reading the request body: %v", r.Method, r.URL.Path, err)
		}
		// The handler may change the request it is given; check the one the client sent.
		sent := r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))

		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		v.Check(t, sent, body, res.StatusCode, res.Header, rec.Body.Bytes())

		for k, vs := range res.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

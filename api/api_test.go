package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mailroom/mailroom/api"
)

// publicOperations need no token: the document, the pages a moderation link opens and the link
// to an oversize message's original, whose signatures are their authorization.
var publicOperations = []string{"GET /openapi.yaml", "GET /moderation/{id}/decide", "POST /moderation/{id}/decide", "GET /originals/{ref}"}

// pageOperations answer a person in a browser with HTML, errors included.
var pageOperations = []string{"GET /moderation/{id}/decide", "POST /moderation/{id}/decide"}

// loadDocument parses and validates the document once; the tests only read it.
var loadDocument = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Document)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.yaml does not load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
})

func load(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := loadDocument()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// operation is one documented operation, named "METHOD /path".
type operation struct {
	name string
	op   *openapi3.Operation
}

func operations(doc *openapi3.T) []operation {
	var ops []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			ops = append(ops, operation{method + " " + path, op})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.name, b.name) })
	return ops
}

func TestDocumentIsOpenAPI31(t *testing.T) {
	doc := load(t)
	if got, want := doc.OpenAPI, "3.1.0"; got != want {
		t.Errorf("openapi = %q, want %q", got, want)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Error("kin-openapi does not treat the document as OpenAPI 3.1, so it would validate it by 3.0 rules")
	}
}

func TestEveryOperationIsNamedAndDescribed(t *testing.T) {
	for _, o := range operations(load(t)) {
		if o.op.OperationID == "" {
			t.Errorf("%s has no operationId", o.name)
		}
		// The description is where each operation says which roles may call it.
		if o.op.Description == "" {
			t.Errorf("%s has no description", o.name)
		}
	}
}

func TestSecurity(t *testing.T) {
	doc := load(t)
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s == nil || s.Value.Type != "http" ||
		s.Value.Scheme != "bearer" || s.Value.BearerFormat != "JWT" {
		t.Fatal("components.securitySchemes.bearerAuth is not an http bearer JWT scheme")
	}
	for _, o := range operations(doc) {
		security := doc.Security
		if o.op.Security != nil {
			security = *o.op.Security
		}
		public := slices.Contains(publicOperations, o.name)
		bearer := len(security) == 1 && len(security[0]) == 1 && security[0]["bearerAuth"] != nil
		switch {
		case public && len(security) != 0:
			t.Errorf("%s is public but requires %v", o.name, security)
		case !public && !bearer:
			t.Errorf("%s requires %v, want exactly bearerAuth", o.name, security)
		}
		if public {
			continue
		}
		for _, status := range []int{401, 403, 500, 503} {
			if o.op.Responses.Status(status) == nil {
				t.Errorf("%s does not document %d", o.name, status)
			}
		}
	}
}

func TestErrorsAreProblems(t *testing.T) {
	for _, o := range operations(load(t)) {
		for code, res := range o.op.Responses.Map() {
			status, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status code; the validator could not hold the handler to it", o.name, code)
				continue
			}
			if status < 400 {
				continue
			}
			if slices.Contains(pageOperations, o.name) {
				// A problem document would be raw JSON in the moderator's browser.
				if res.Value.Content["text/html"] == nil {
					t.Errorf("%s: %d is not a page (text/html)", o.name, status)
				}
				continue
			}
			want := []string{"application/problem+json"}
			if status == 401 {
				// API Gateway's JWT authorizer answers a bad token itself, in its own format.
				want = []string{"application/json", "application/problem+json"}
			}
			if got := slices.Sorted(maps.Keys(res.Value.Content)); !slices.Equal(got, want) {
				t.Errorf("%s: %d has content %v, want %v", o.name, status, got, want)
				continue
			}
			if !refersTo(res.Value.Content["application/problem+json"].Schema, "#/components/schemas/Problem") {
				t.Errorf("%s: %d is not a Problem", o.name, status)
			}
		}
	}
}

// refersTo reports whether s is the schema ref or extends it with allOf.
func refersTo(s *openapi3.SchemaRef, ref string) bool {
	if s == nil {
		return false
	}
	if s.Ref == ref {
		return true
	}
	return s.Value != nil && slices.ContainsFunc(s.Value.AllOf, func(s *openapi3.SchemaRef) bool { return s.Ref == ref })
}

// TestHTTPConventions holds the document to the conventions docs/admin-api.md states once for
// all endpoints, so a new operation cannot forget them.
func TestHTTPConventions(t *testing.T) {
	doc := load(t)
	for _, o := range operations(doc) {
		has := func(param string) bool {
			return slices.ContainsFunc(o.op.Parameters, func(p *openapi3.ParameterRef) bool {
				return p.Ref == "#/components/parameters/"+param
			})
		}
		method, _, _ := strings.Cut(o.name, " ")
		switch method {
		case "POST":
			switch o.name {
			case "POST /directory/import", "POST /routing/explain", "POST /autoreplies/preview",
				"POST /moderation/{id}/approve", "POST /moderation/{id}/reject", "POST /moderation/{id}/decide",
				"POST /calendars/{id}/holidays", "POST /conversations/{id}/pause", "POST /conversations/{id}/resume":
				// An import is idempotent by its content (a repeat reports every record unchanged,
				// a holiday feed imported again adds no date); explain and preview change nothing;
				// approving, rejecting and deciding through a link are idempotent by the hold's state
				// (a repeat approval completes the release and sends nothing twice, a repeat
				// rejection is a 409 that changes nothing), and pausing and resuming a conversation
				// by the conversation's (a second pause or resume is a 409 that changes nothing).
				if has("IdempotencyKey") {
					t.Errorf("%s: takes Idempotency-Key, which the handler ignores", o.name)
				}
				continue
			}
			if !has("IdempotencyKey") || o.op.Responses.Status(422) == nil {
				t.Errorf("%s: a POST takes Idempotency-Key and documents 422", o.name)
			}
		case "PATCH", "DELETE":
			if !has("IfMatch") || o.op.Responses.Status(412) == nil {
				t.Errorf("%s: a %s honours If-Match and documents 412", o.name, method)
			}
		}
		if method == "PATCH" {
			got := slices.Sorted(maps.Keys(o.op.RequestBody.Value.Content))
			if want := []string{"application/json", "application/merge-patch+json"}; !slices.Equal(got, want) {
				t.Errorf("%s takes %v, want %v", o.name, got, want)
			}
		}
		// A page's form is read by net/http: a body over the limit is a 400 page, one of another
		// type is ignored.
		if o.op.RequestBody != nil && !slices.Contains(pageOperations, o.name) {
			for _, status := range []int{413, 415} {
				if o.op.Responses.Status(status) == nil {
					t.Errorf("%s takes a body but does not document %d", o.name, status)
				}
			}
		}
		if has("Limit") != has("Cursor") {
			t.Errorf("%s: limit and cursor go together", o.name)
		}
	}
}

// TestDirectoryGroupsRepeatGroups holds the export and import shapes of a group to the group
// resource they repeat (see the comment above PostingPolicy in openapi.yaml).
func TestDirectoryGroupsRepeatGroups(t *testing.T) {
	schemas := load(t).Components.Schemas
	for _, c := range []struct{ group, directory string }{
		{"Group", "DirectoryGroup"},
		{"GroupCreate", "DirectoryGroupInput"},
	} {
		g, d := schemas[c.group].Value, schemas[c.directory].Value
		want := append(slices.Sorted(maps.Keys(g.Properties)), "members")
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(d.Properties)); !slices.Equal(got, want) {
			t.Errorf("%s has properties %v, want %s's and members: %v", c.directory, got, c.group, want)
		}
		for name, p := range g.Properties {
			if dp := d.Properties[name]; dp != nil && !sameConstraints(t, p, dp) {
				t.Errorf("%s.%s differs from %s.%s", c.directory, name, c.group, name)
			}
		}
		want = slices.Clone(g.Required)
		if slices.Contains(d.Required, "members") {
			want = append(want, "members")
		}
		if got := d.Required; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s requires %v, want %v", c.directory, got, want)
		}
	}
}

// sameConstraints compares two property schemas, descriptions aside.
func sameConstraints(t *testing.T, a, b *openapi3.SchemaRef) bool {
	t.Helper()
	var schemas [2]map[string]any
	for i, s := range []*openapi3.SchemaRef{a, b} {
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &schemas[i]); err != nil {
			t.Fatal(err)
		}
		delete(schemas[i], "description")
	}
	return reflect.DeepEqual(schemas[0], schemas[1])
}

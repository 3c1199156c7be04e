package directory

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string // "" when the body decodes
	}{
		{"valid object", `{"id":"sales","name":"Sales","posting":{"policy":"members"}}`, ""},
		{"surrounding white space", " \n{\"name\":\"Sales\"}\n ", ""},
		{"unknown field", `{"name":"Sales","colour":"red"}`, "colour"},
		{"wrong type", `{"name":42}`, "name"},
		{"wrong type nested", `{"name":"Sales","posting":{"policy":7}}`, "posting.policy"},
		{"array for a string", `{"name":["a"]}`, "name"},
		{"string for an array", `{"addresses":"a@example.com"}`, "addresses"},
		{"trailing object", `{"name":"Sales"}{"name":"Other"}`, "body"},
		{"trailing garbage", `{"name":"Sales"} x`, "body"},
		{"empty body", ``, "body"},
		{"blank body", " \n\t", "body"},
		{"array", `[{"name":"Sales"}]`, "body"},
		{"string", `"Sales"`, "body"},
		{"number", `42`, "body"},
		{"null", `null`, "body"},
		{"malformed", `{"name":}`, "body"},
		{"truncated", `{"name":"Sa`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Group
			err := Decode("test", []byte(tt.body), &g)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Decode() error = %v", err)
				}
				return
			}
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("Decode() error = %v, want kind invalid", err)
			}
			if got := fault.FieldOf(err); got != tt.wantField {
				t.Errorf("FieldOf(Decode()) = %q, want %q (error %v)", got, tt.wantField, err)
			}
		})
	}
}

func TestDecodeMessages(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"wrong type says what is expected", `{"posting":{"policy":7}}`, "posting.policy: must be a string, not number"},
		{"not an object", `[1]`, "body: must be an object, not array"},
		{"unknown field", `{"colour":"red"}`, "colour: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Group
			if got := fault.MessageOf(Decode("test", []byte(tt.body), &g)); got != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMergePatch runs the examples of RFC 7396 Appendix A. Mailroom patches resources, which are
// objects, so a patch that is not an object is refused rather than replacing the document.
func TestMergePatch(t *testing.T) {
	tests := []struct {
		name       string
		doc, patch string
		want       string // "" when the patch is refused
	}{
		{"replace a member", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{"add a member", `{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{"null removes", `{"a":"b"}`, `{"a":null}`, `{}`},
		{"null removes one of two", `{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{"string replaces array", `{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{"array replaces string", `{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{"nested merge", `{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{"arrays replaced whole", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{"array patch refused", `["a","b"]`, `["c","d"]`, ""},
		{"array patch of an object refused", `{"a":"b"}`, `["c"]`, ""},
		{"null patch refused", `{"a":"foo"}`, `null`, ""},
		{"string patch refused", `{"a":"foo"}`, `"bar"`, ""},
		{"existing null kept", `{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{"object patch of an array", `[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{"null inside a new object dropped", `{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// Beyond the RFC's table: numbers keep their precision through the merge.
		{"large numbers kept exactly", `{"version":9007199254740993}`, `{"a":1}`, `{"a":1,"version":9007199254740993}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergePatch("test", []byte(tt.doc), []byte(tt.patch))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("MergePatch() = %s, want an error", got)
				}
				if !fault.Is(err, fault.Invalid) {
					t.Errorf("MergePatch() error = %v, want kind invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("MergePatch() error = %v", err)
			}
			if !jsonEqual(t, got, []byte(tt.want)) {
				t.Errorf("MergePatch(%s, %s) = %s, want %s", tt.doc, tt.patch, got, tt.want)
			}
		})
	}
}

func TestMergePatchMalformed(t *testing.T) {
	for name, patch := range map[string]string{
		"truncated":     `{"a":`,
		"trailing data": `{"a":1} {"b":2}`,
		"empty":         ``,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := MergePatch("test", []byte(`{}`), []byte(patch))
			if got, want := fault.FieldOf(err), "body"; got != want {
				t.Errorf("FieldOf() = %q, want %q (error %v)", got, want, err)
			}
		})
	}
}

// jsonEqual compares two JSON documents by value; numbers are compared as written.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(b []byte) any {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("not JSON: %s: %v", b, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

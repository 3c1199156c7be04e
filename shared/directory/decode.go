package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mailroom/mailroom/shared/fault"
)

// Decode reads one JSON object into v strictly: unknown fields, wrong types, trailing data and
// anything that is not an object are errors of kind Invalid that name the field at fault.
func Decode(op string, body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return fault.InvalidField(op, "body", "the request body is empty")
	}
	// encoding/json accepts null for any value and leaves v as it was.
	if bytes.Equal(trimmed, []byte("null")) {
		return fault.InvalidField(op, "body", "must be an object, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(op, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fault.InvalidField(op, "body", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(op string, err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return fault.InvalidField(op, field, "must be %s, not %s", jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fault.InvalidField(op, "body", "malformed JSON at byte %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fault.InvalidField(op, field, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fault.InvalidField(op, "body", "truncated JSON")
	}
	return fault.InvalidField(op, "body", "not a JSON object: %v", err)
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "a number"
	}
	return goKind
}

// MergePatch applies an RFC 7396 JSON Merge Patch to the JSON object doc.
func MergePatch(op string, doc, patch []byte) ([]byte, error) {
	var p any
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, jsonError(op, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fault.InvalidField(op, "body", "unexpected data after the JSON object")
	}
	if _, ok := p.(map[string]any); !ok {
		return nil, fault.InvalidField(op, "body", "a merge patch must be a JSON object")
	}
	var d any
	dec = json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return json.Marshal(mergeValue(d, p))
}

func mergeValue(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergeValue(tm[k], v)
	}
	return tm
}

// marshal renders a resource for the audit log.
func marshal(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", err.Error()))
	}
	return b
}

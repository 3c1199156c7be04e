package fault

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"plain error is internal", io.EOF, Internal},
		{"direct", New(NotFound, "get", "no such message"), NotFound},
		{"wrapped by fmt", fmt.Errorf("outer: %w", Wrap(Transient, "put", io.ErrUnexpectedEOF)), Transient},
		{"field", InvalidField("create", "address", "not an address"), Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWrapNil(t *testing.T) {
	if err := Wrap(Internal, "op", nil); err != nil {
		t.Fatalf("Wrap(nil) = %v, want nil", err)
	}
}

func TestErrorMessageAndUnwrap(t *testing.T) {
	err := &Error{Kind: Invalid, Op: "mailbox.Create", Field: "address", Message: "missing @", Err: io.EOF}
	if got, want := err.Error(), "mailbox.Create: address: missing @: EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, io.EOF) {
		t.Error("errors.Is(err, io.EOF) = false, want true")
	}
	if got := FieldOf(fmt.Errorf("x: %w", err)); got != "address" {
		t.Errorf("FieldOf = %q, want address", got)
	}
}

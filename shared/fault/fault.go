// Package fault is Mailroom's one error type. Every error that crosses a package boundary carries
// a Kind, so transports can decide without string matching: the admin API maps kinds to HTTP status,
// Lambda handlers map them to retry (transient) or acknowledge (everything else).
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller should do about it.
type Kind int

const (
	// Internal is a bug or an unexpected state: report it, do not retry blindly.
	Internal Kind = iota
	// Invalid means the input is wrong; retrying the same input fails the same way.
	Invalid
	// NotFound means the thing asked for does not exist.
	NotFound
	// Conflict means the write lost a race or the thing already exists.
	Conflict
	// Transient means a dependency failed in a way that may succeed when tried again.
	Transient
	// Unauthenticated means the caller could not be identified.
	Unauthenticated
	// Forbidden means the caller is known but may not do this.
	Forbidden
	// Stale means a write named a version that is no longer current (an If-Match that failed).
	Stale
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Transient:
		return "transient"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case Stale:
		return "stale"
	default:
		return "internal"
	}
}

// Error is an error with a Kind. Op names the operation that failed ("archive.Put"); Field names
// the input field at fault for Invalid errors; Message is safe to show to a caller; Err is the
// cause, for logs only.
type Error struct {
	Kind    Kind
	Op      string
	Field   string
	Message string
	Err     error
	// Details are extra facts safe to show to the caller (a group cycle's path, every invalid
	// field of a bulk import); the admin API adds them to its problem documents.
	Details map[string]any
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Op != "" {
		return e.Op + ": " + msg
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a message for the caller.
func New(k Kind, op, format string, args ...any) error {
	return &Error{Kind: k, Op: op, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns err classified as kind k, or nil when err is nil.
func Wrap(k Kind, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Op: op, Err: err}
}

// InvalidField reports that one input field is wrong, and why.
func InvalidField(op, field, format string, args ...any) error {
	return &Error{Kind: Invalid, Op: op, Field: field, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the outermost *Error in err's chain, or Internal when there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is classified as kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// FieldOf returns the field named by the outermost *Error in err's chain, if any.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// DetailsOf returns the details of the outermost *Error in err's chain, if any.
func DetailsOf(err error) map[string]any {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}

// MessageOf returns the caller-safe message of the outermost *Error in err's chain: its Message,
// prefixed by its Field. Causes are left out; they are for logs.
func MessageOf(err error) string {
	var e *Error
	if !errors.As(err, &e) || e.Message == "" {
		return ""
	}
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

package s3store

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestTranslate(t *testing.T) {
	invalid := smithy.InvalidParamsError{Context: "GetObjectInput"}
	invalid.Add(smithy.NewErrParamRequired("Bucket"))
	tests := []struct {
		name string
		err  error
		want fault.Kind
	}{
		{"missing key", &smithy.GenericAPIError{Code: "NoSuchKey"}, fault.NotFound},
		{"throttled", &smithy.GenericAPIError{Code: "SlowDown"}, fault.Transient},
		{"precondition", &smithy.GenericAPIError{Code: "PreconditionFailed"}, fault.Conflict},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, fault.Transient},
		{"deadline", context.DeadlineExceeded, fault.Transient},
		{"request Mailroom built wrong", &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: invalid}, fault.Internal},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied"}, fault.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fault.KindOf(translate("op", tt.err)); got != tt.want {
				t.Errorf("kind = %v, want %v", got, tt.want)
			}
		})
	}
}

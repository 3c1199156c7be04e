// Package dynamo keeps Mailroom's records in DynamoDB. Each type here implements a port declared by
// a domain package (archive.Index, …) and translates SDK errors to fault kinds, so no caller ever
// sees a DynamoDB type.
package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// maxTransactItems is DynamoDB's limit on items in one TransactWriteItems call.
const maxTransactItems = 100

// translate maps DynamoDB errors onto fault kinds. A failed condition is a Conflict; throttling,
// capacity and transaction contention are Transient; validation errors are Internal because
// Mailroom built the request.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	// The SDK refused to send what Mailroom built: a bug here, not worth retrying.
	var invalid smithy.InvalidParamsError
	if errors.As(err, &invalid) {
		return fault.Wrap(fault.Internal, op, err)
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fault.Wrap(fault.Conflict, op, err)
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		return canceled(op, tce, err)
	}
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fault.Wrap(fault.Internal, op, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Wrap(fault.Transient, op, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
			"InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
			"TransactionConflictException", "LimitExceededException":
			return fault.Wrap(fault.Transient, op, err)
		}
		return fault.Wrap(fault.Internal, op, err)
	}
	// No API error at all: the request never got an answer (connection refused, reset).
	return fault.Wrap(fault.Transient, op, err)
}

// canceled classifies a cancelled transaction by its reasons, which DynamoDB lists in the order of
// the transact items. A failed condition is a Conflict whose cause names the first failing item as
// a directory.ConditionFailed: Directory.Apply sends one item per mutation, so the index is the
// mutation's and the service can tell a stale version from a taken address. A request DynamoDB
// found invalid is Mailroom's bug; contention and throttling are Transient.
func canceled(op string, tce *types.TransactionCanceledException, err error) error {
	kind := fault.Transient
	for i, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			return fault.Wrap(fault.Conflict, op, fmt.Errorf("%w: %w", &directory.ConditionFailed{Index: i}, err))
		case "ValidationError", "ItemCollectionSizeLimitExceeded":
			kind = fault.Internal
		}
	}
	return fault.Wrap(kind, op, err)
}

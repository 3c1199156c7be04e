// Package awsclient builds the AWS SDK clients Mailroom's functions and tools share. In Lambda the
// SDK's default chain supplies region and credentials; on the local stack the same clients are
// pointed at local endpoints. Either way the code path above the client is the same.
package awsclient

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/smithy-go/middleware"
)

// Endpoints overrides where each service is reached. Empty fields use AWS's own endpoints (or the
// SDK's AWS_ENDPOINT_URL_* environment variables).
type Endpoints struct {
	DynamoDB string
	S3       string
	SES      string
}

// Options configure New. The zero value gives production behaviour.
type Options struct {
	Region    string
	Endpoints Endpoints
	// AccessKey and SecretKey, when set, replace the default credential chain (local servers).
	AccessKey, SecretKey string
	// Counter, when set, counts every HTTP request the clients send (each retry too), so
	// benchmarks can report AWS requests per message.
	Counter *RequestCounter
	// MaxAttempts bounds the SDK's retries of throttled and transient failures (default 5).
	MaxAttempts int
}

// Clients are the service clients; each is safe for concurrent use and meant to be reused across
// invocations.
type Clients struct {
	DynamoDB *dynamodb.Client
	S3       *s3.Client
	SES      *sesv2.Client
}

// New loads the SDK configuration and builds the clients.
func New(ctx context.Context, o Options) (Clients, error) {
	attempts := o.MaxAttempts
	if attempts == 0 {
		attempts = 5
	}
	loads := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = attempts })
		}),
	}
	if o.Region != "" {
		loads = append(loads, config.WithRegion(o.Region))
	}
	if o.AccessKey != "" {
		loads = append(loads, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")))
	}
	if o.Counter != nil {
		loads = append(loads, config.WithAPIOptions([]func(*middleware.Stack) error{o.Counter.register}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return Clients{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return Clients{}, fmt.Errorf("load AWS configuration: no region (set AWS_REGION)")
	}
	ep := o.Endpoints
	return Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, func(c *dynamodb.Options) {
			if ep.DynamoDB != "" {
				c.BaseEndpoint = aws.String(ep.DynamoDB)
			}
		}),
		S3: s3.NewFromConfig(cfg, func(c *s3.Options) {
			if ep.S3 != "" {
				c.BaseEndpoint = aws.String(ep.S3)
				// Local S3 servers have no per-bucket DNS names.
				c.UsePathStyle = true
			}
			// Checksums only where S3 requires them: local servers and S3 alike accept this, and
			// it keeps streaming uploads from being buffered to compute a trailing checksum.
			c.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			c.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}),
		SES: sesv2.NewFromConfig(cfg, func(c *sesv2.Options) {
			if ep.SES != "" {
				c.BaseEndpoint = aws.String(ep.SES)
			}
		}),
	}, nil
}

// RequestCounter counts requests on the wire. It sits at the end of the SDK's finalize step,
// after the retry loop, so it sees every attempt; counting in the SDK rather than in an HTTP
// transport keeps the SDK's own HTTP client (and its CA bundle handling) in place.
type RequestCounter struct{ n atomic.Int64 }

// Count returns the number of requests sent so far.
func (c *RequestCounter) Count() int64 { return c.n.Load() }

func (c *RequestCounter) register(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("mailroom.CountRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.n.Add(1)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

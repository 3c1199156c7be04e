// Command bootstrap is the inbound Lambda: configuration, AWS clients, handler, lambda.Start.
package main

import (
	"context"
	"os"
	// Time zones for routing rules, out-of-office periods and business calendars: the Lambda
	// runtime image has no zoneinfo of its own.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/caarlos0/env/v11"

	"github.com/mailroom/mailroom/functions/inbound"
	"github.com/mailroom/mailroom/shared/awsclient"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := env.ParseAs[inbound.Config]()
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	clients, err := awsclient.New(context.Background(), awsclient.Options{})
	if err != nil {
		log.Error("aws clients", "err", err)
		os.Exit(1)
	}
	lambda.Start(inbound.New(cfg, clients, log).Handle)
}

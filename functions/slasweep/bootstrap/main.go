// Command bootstrap is the SLA-sweep Lambda: configuration, AWS clients, handler, lambda.Start.
package main

import (
	"context"
	"os"
	// Business calendars are in their own time zones; the Lambda image has no zoneinfo.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/caarlos0/env/v11"

	"github.com/mailroom/mailroom/functions/slasweep"
	"github.com/mailroom/mailroom/shared/awsclient"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := env.ParseAs[slasweep.Config]()
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	clients, err := awsclient.New(context.Background(), awsclient.Options{})
	if err != nil {
		log.Error("aws clients", "err", err)
		os.Exit(1)
	}
	lambda.Start(slasweep.New(cfg, clients, log).Handle)
}

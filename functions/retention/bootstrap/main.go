// Command bootstrap is the retention Lambda: configuration, AWS clients, handler, lambda.Start.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/caarlos0/env/v11"

	"github.com/mailroom/mailroom/functions/retention"
	"github.com/mailroom/mailroom/shared/awsclient"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := env.ParseAs[retention.Config]()
	if err == nil {
		err = cfg.Check()
	}
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	clients, err := awsclient.New(context.Background(), awsclient.Options{})
	if err != nil {
		log.Error("aws clients", "err", err)
		os.Exit(1)
	}
	lambda.Start(retention.New(cfg, clients, log).Handle)
}

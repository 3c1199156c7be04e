// Command bootstrap is the admin API Lambda: configuration, AWS clients, handler, lambda.Start.
package main

import (
	"context"
	"os"
	// Mailbox time zones are validated with time.LoadLocation; the Lambda image is not guaranteed
	// to carry a zoneinfo database, so the binary brings its own.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/caarlos0/env/v11"

	"github.com/mailroom/mailroom/functions/admin"
	"github.com/mailroom/mailroom/shared/awsclient"
)

func main() {
	log := lambdacontext.NewLogger()
	cfg, err := env.ParseAs[admin.Config]()
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	clients, err := awsclient.New(context.Background(), awsclient.Options{})
	if err != nil {
		log.Error("aws clients", "err", err)
		os.Exit(1)
	}
	h, err := admin.New(cfg, clients, log)
	if err != nil {
		log.Error("admin handler", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

// Command mailroom is Mailroom's command line: it runs the local stack, injects and inspects mail,
// and (as the admin API grows) administers a deployment.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing it as a failure.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "mailroom:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "mailroom",
		Short:         "Mailroom: email workflow functions on AWS SES, Lambda, DynamoDB and S3",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDevCmd(), newStackCmd(), newSendCmd(), newParseCmd(), newCorpusCmd(), newEnvCmd(), newOutboxCmd(), newLoginCmd())
	root.AddCommand(adminCommands()...)
	return root
}

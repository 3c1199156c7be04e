package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/infra/devstack"
)

func newStackCmd() *cobra.Command {
	stack := &cobra.Command{
		Use:   "stack",
		Short: "Run commands against a fresh in-memory local stack",
	}
	stack.AddCommand(&cobra.Command{
		Use:   "run -- COMMAND [ARGS...]",
		Short: "Start an in-memory local stack, run COMMAND with its endpoints in the environment, stop it",
		Long: "Run is how `make test` shares one set of local servers (DynamoDB Local, versitygw, local SES)\n" +
			"with every test package: it starts them on free loopback ports, runs the command with the\n" +
			"MAILROOM_* and AWS_* endpoint variables set, stops the servers by process id and exits with\n" +
			"the command's status.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			code, err := devstack.Run(cmd.Context(), devstack.Options{WithSES: true, Log: log}, args)
			if err != nil {
				fmt.Fprintln(os.Stderr, "mailroom stack run:", err)
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	})
	return stack
}

func newEnvCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print shell exports that point the AWS CLI and SDKs at the running local stack",
		Long:  "Use it as: eval \"$(mailroom env)\"; aws dynamodb scan --table-name mailroom-archive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ep, _, err := runningDev(stateDir)
			if err != nil {
				return err
			}
			for _, kv := range ep.Env() {
				fmt.Fprintf(cmd.OutOrStdout(), "export %s\n", shellQuote(kv))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state", "", "state directory of the running stack (default: .mailroom in the repository)")
	return cmd
}

// shellQuote quotes the value of a KEY=value pair for POSIX shells.
func shellQuote(kv string) string {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return kv
	}
	return k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

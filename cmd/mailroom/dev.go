package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/infra/devstack"
	"github.com/mailroom/mailroom/infra/devstack/smtpingress"
)

func newDevCmd() *cobra.Command {
	var (
		domains  []string
		smtpAddr string
		stateDir string
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system locally (what `make dev` runs)",
		Long: `Dev starts the local stack and keeps it running until interrupted:

  DynamoDB Local and versitygw (S3), with their data kept in .mailroom/ across restarts;
  the local SES v2 endpoint, whose web page shows every message Mailroom sends;
  an SMTP ingress that receives mail for the given domains like an SES receipt rule: it
  stores the raw message in S3 and runs the inbound function in-process.

Send it mail with "mailroom send FILE.eml --to ADDR", swaks or any mail client.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if stateDir == "" {
				d, err := devstack.DefaultStateDir()
				if err != nil {
					return err
				}
				stateDir = d
			}
			resources := devstack.DevResources()
			bucket, table := resourceName(resources, "MailBucket"), resourceName(resources, "ArchiveTable")

			// Claim the SMTP port before starting the servers. The usual port makes swaks easy;
			// when something else holds it, any free loopback port will do (the banner and
			// `mailroom send` know which).
			l, err := net.Listen("tcp", smtpAddr)
			if err != nil && !cmd.Flags().Changed("smtp") {
				l, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				return fmt.Errorf("SMTP ingress: %w", err)
			}
			defer l.Close()
			if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
				return fmt.Errorf("SMTP ingress: %s is not a loopback address; the local stack only listens on 127.0.0.1", a)
			}

			stack, err := devstack.Start(ctx, devstack.Options{
				StateDir: stateDir, Persist: true, WithSES: true, Resources: resources, Log: log,
			})
			if err != nil {
				return err
			}
			defer func() {
				if err := stack.Stop(); err != nil {
					log.Error("stop local stack", "err", err)
				}
			}()
			ep := stack.Endpoints()
			clients, err := ep.Clients(ctx)
			if err != nil {
				return err
			}
			recv, err := newReceiving(clients, bucket, table, domains, log)
			if err != nil {
				return err
			}
			serveErr := make(chan error, 1)
			go func() { serveErr <- recv.ingress.Serve(l) }()
			defer recv.ingress.Close()

			info := devInfo{SMTP: l.Addr().String(), Domains: domains, Bucket: bucket, Table: table, SESUI: ep.SES + "/"}
			if err := writeDevInfo(stack.StateDir(), info); err != nil {
				return err
			}
			defer os.Remove(filepath.Join(stack.StateDir(), devInfoFile))
			printBanner(cmd, ep, info)

			select {
			case <-ctx.Done():
				fmt.Fprintln(cmd.ErrOrStderr(), "\nstopping…")
				return nil
			case err := <-serveErr:
				if errors.Is(err, smtpingress.ErrClosed) {
					return nil
				}
				return fmt.Errorf("SMTP ingress: %w", err)
			}
		},
	}
	cmd.Flags().StringSliceVar(&domains, "domains", []string{"example.com"}, "mail domains the SMTP ingress receives for (comma-separated)")
	cmd.Flags().StringVar(&smtpAddr, "smtp", "127.0.0.1:2525", "SMTP ingress listen address (loopback only)")
	cmd.Flags().StringVar(&stateDir, "state", "", "directory for the stack's data and logs (default: .mailroom in the repository)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

func resourceName(rs []devstack.Resource, logicalID string) string {
	for _, r := range rs {
		if r.LogicalID == logicalID {
			return r.Name
		}
	}
	return ""
}

func printBanner(cmd *cobra.Command, ep devstack.Endpoints, info devInfo) {
	host, port, _ := net.SplitHostPort(info.SMTP)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, `
Mailroom is running locally.

  SMTP ingress      %s   (receives for %s)
  Sent mail (SES)   %s
  DynamoDB          %s   table %s
  S3                %s   bucket %s

Try it:
  bin/mailroom send message.eml --to someone@%s
  swaks --server %s --port %s --to someone@%s
  eval "$(bin/mailroom env)" && aws s3 ls s3://%s/archive/ --recursive

Ctrl-C stops everything; data stays in the state directory for the next run.
`, info.SMTP, strings.Join(info.Domains, ", "), info.SESUI, ep.DynamoDB, info.Table, ep.S3, info.Bucket,
		info.Domains[0], host, port, info.Domains[0], info.Bucket)
}

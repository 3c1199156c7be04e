package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroom/mailroom/functions/admin"
	moderationsweep "github.com/mailroom/mailroom/functions/moderation"
	retentionfn "github.com/mailroom/mailroom/functions/retention"
	"github.com/mailroom/mailroom/functions/sesevents"
	"github.com/mailroom/mailroom/functions/slasweep"
	"github.com/mailroom/mailroom/infra/devstack"
	"github.com/mailroom/mailroom/infra/devstack/apigw"
	"github.com/mailroom/mailroom/infra/devstack/seslocal"
	"github.com/mailroom/mailroom/infra/devstack/smtpingress"
	"github.com/mailroom/mailroom/shared/awsclient"
)

func newDevCmd() *cobra.Command {
	var (
		domains  []string
		smtpAddr string
		apiAddr  string
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
  stores the raw message in S3 and runs the inbound function in-process;
  the admin API, served by the admin function in-process behind a front that checks tokens
  as API Gateway's JWT authorizer would.

Send it mail with "mailroom send FILE.eml --to ADDR", swaks or any mail client. Get a token
for the admin API with "mailroom login --role admin".`,
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

			// Claim the ports before starting the servers, which take a while: a port given by
			// flag and already taken should fail at once.
			l, err := listenLoopback(cmd, "smtp", smtpAddr)
			if err != nil {
				return fmt.Errorf("SMTP ingress: %w", err)
			}
			defer l.Close()
			apiListener, err := listenLoopback(cmd, "api", apiAddr)
			if err != nil {
				return fmt.Errorf("admin API: %w", err)
			}
			defer apiListener.Close()

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
			recv, err := newReceiving(clients, bucket, "http://"+apiListener.Addr().String(), tables{archive: table, directory: resourceName(resources, "DirectoryTable"), state: resourceName(resources, "StateTable")}, domains, log)
			if err != nil {
				return err
			}
			// SES's configuration-set events go to the SES events function, as EventBridge
			// would deliver them: bounces and complaints suspend destinations.
			events, err := sesevents.New(sesevents.Config{
				StateTable: resourceName(resources, "StateTable"), DirectoryTable: resourceName(resources, "DirectoryTable"),
			}, clients, log.With("function", "sesevents"))
			if err != nil {
				return err
			}
			// The scheduled sweeps, as EventBridge Scheduler runs them: moderation hourly, SLA
			// every 15 minutes.
			sweep := moderationsweep.New(moderationsweep.Config{
				DirectoryTable: resourceName(resources, "DirectoryTable"), StateTable: resourceName(resources, "StateTable"),
				ConfigurationSet: "mailroom-outbound", Batch: 500,
			}, clients, log.With("function", "moderation-sweep"))
			slaSweep := slasweep.New(slasweep.Config{
				DirectoryTable: resourceName(resources, "DirectoryTable"), StateTable: resourceName(resources, "StateTable"),
				ConfigurationSet: "mailroom-outbound", LinkBaseURL: "http://" + apiListener.Addr().String(), Batch: 500,
			}, clients, log.With("function", "sla-sweep"))
			// The retention job, hourly as deployed: one pass a day, resumed where it stopped.
			retentionJob := retentionfn.New(retentionfn.Config{
				MailBucket: bucket, ArchiveTable: table, DirectoryTable: resourceName(resources, "DirectoryTable"),
				StateTable: resourceName(resources, "StateTable"), ArchivePrefix: "archive/", ReportPrefix: "reports/retention/",
				InboundPrefix: "inbound/", InboundRawDays: 30, Batch: 500, Every: 24 * time.Hour, FullEvery: 7 * 24 * time.Hour,
			}, clients, log.With("function", "retention"))
			go every(ctx, time.Hour, func(ctx context.Context) error {
				_, err := retentionJob.Handle(ctx, retentionfn.Event{})
				return err
			})
			go every(ctx, time.Hour, sweep.Handle)
			go every(ctx, 15*time.Minute, slaSweep.Handle)
			stack.SES().SetOnEvent(func(e seslocal.Event) {
				b, err := e.EventBridgeJSON()
				if err == nil {
					err = events.Handle(ctx, b)
				}
				if err != nil {
					log.Error("SES event", "type", e.Type, "err", err)
				}
			})
			api, err := newAdminAPI(clients, resources, "http://"+apiListener.Addr().String(), stack.StateDir(), log)
			if err != nil {
				return err
			}
			serveErr := make(chan error, 1)
			go func() { serveErr <- recv.ingress.Serve(l) }()
			defer recv.ingress.Close()
			apiErr := make(chan error, 1)
			go func() { apiErr <- api.Serve(apiListener) }()
			defer api.Close()

			info := devInfo{SMTP: l.Addr().String(), API: "http://" + apiListener.Addr().String(),
				Domains: domains, Bucket: bucket, Table: table, SESUI: ep.SES + "/"}
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
			case err := <-apiErr:
				if errors.Is(err, apigw.ErrClosed) {
					return nil
				}
				return fmt.Errorf("admin API: %w", err)
			}
		},
	}
	cmd.Flags().StringSliceVar(&domains, "domains", []string{"example.com"}, "mail domains the SMTP ingress receives for (comma-separated)")
	cmd.Flags().StringVar(&smtpAddr, "smtp", "127.0.0.1:2525", "SMTP ingress listen address (loopback only)")
	cmd.Flags().StringVar(&apiAddr, "api", "127.0.0.1:8080", "admin API listen address (loopback only)")
	cmd.Flags().StringVar(&stateDir, "state", "", "directory for the stack's data and logs (default: .mailroom in the repository)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	return cmd
}

// listenLoopback claims addr, the value of the flag named flag, before the servers start. The
// usual ports make swaks and curl easy; when something else holds one and the flag was left at
// its default, any free loopback port will do (the banner and .mailroom/dev.json say which).
func listenLoopback(cmd *cobra.Command, flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil && !cmd.Flags().Changed(flag) {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	if a, ok := l.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("%s is not a loopback address; the local stack only listens on 127.0.0.1", a)
	}
	return l, nil
}

// newAdminAPI is the local equivalent of the HTTP API, its JWT authorizer and the admin
// function: the same handler the Lambda runs, behind a front that accepts `mailroom login`
// tokens.
func newAdminAPI(clients awsclient.Clients, resources []devstack.Resource, base, stateDir string, log *slog.Logger) (*apigw.Front, error) {
	cfg := admin.Config{
		DirectoryTable: resourceName(resources, "DirectoryTable"),
		AuditTable:     resourceName(resources, "AuditTable"),
		StateTable:     resourceName(resources, "StateTable"),
		MailBucket:     resourceName(resources, "MailBucket"),
		ArchiveTable:   resourceName(resources, "ArchiveTable"),
		// The inbound function's sends name the same set (local.go).
		ConfigurationSet: "mailroom-outbound",
		LinkBaseURL:      base,
		RolesClaim:       apigw.RolesClaim,
	}
	if cfg.DirectoryTable == "" || cfg.AuditTable == "" {
		return nil, errors.New("admin API: devstack.DevResources() names no DirectoryTable or AuditTable")
	}
	h, err := admin.New(cfg, clients, log.With("function", "admin"))
	if err != nil {
		return nil, err
	}
	keys, err := apigw.LoadOrCreateKeys(stateDir)
	if err != nil {
		return nil, err
	}
	return apigw.New(apigw.Config{
		Handler: h.Handle,
		Keys:    keys,
		// The API description and the moderation link pages are served without a token, as
		// their routes have no authorizer.
		Public: admin.Public,
		Log:    log.With("component", "admin-api"),
	})
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
  Admin API         %s   (bin/mailroom login --role admin)
  Sent mail (SES)   %s
  DynamoDB          %s   table %s
  S3                %s   bucket %s

Try it:
  bin/mailroom send message.eml --to someone@%s
  swaks --server %s --port %s --to someone@%s
  eval "$(bin/mailroom env)" && aws s3 ls s3://%s/archive/ --recursive

Ctrl-C stops everything; data stays in the state directory for the next run.
`, info.SMTP, strings.Join(info.Domains, ", "), info.API, info.SESUI, ep.DynamoDB, info.Table, ep.S3, info.Bucket,
		info.Domains[0], host, port, info.Domains[0], info.Bucket)
}

// every runs f each period until ctx ends, as a schedule would; f logs its own failures, and the
// next run retries.
func every(ctx context.Context, period time.Duration, f func(context.Context) error) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = f(ctx)
		}
	}
}

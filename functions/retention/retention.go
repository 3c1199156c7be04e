// Package retention is the scheduled Lambda that destroys archived mail past its retention
// policy unless a legal hold keeps it: each invocation takes the pass under way up where it
// stopped, or starts the day's pass, and stops before its deadline so the next one goes on. The
// package is importable so tests and the local stack run exactly this handler; bootstrap/ is the
// Lambda entry point.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/dynamo"
	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/retention"
	"github.com/mailroom/mailroom/shared/s3store"
)

// Config is read from the environment once, at start.
type Config struct {
	// MailBucket holds the archived originals and receives the reports.
	MailBucket string `env:"MAIL_BUCKET,required"`
	// ArchiveTable holds the records and listings that are deleted with each message.
	ArchiveTable string `env:"ARCHIVE_TABLE,required"`
	// DirectoryTable holds the retention policies and legal holds (read only).
	DirectoryTable string `env:"DIRECTORY_TABLE,required"`
	// StateTable holds the job's cursor and the destruction records.
	StateTable string `env:"STATE_TABLE,required"`
	// ArchivePrefix is where the originals are; ReportPrefix where the reports go.
	ArchivePrefix string `env:"ARCHIVE_PREFIX" envDefault:"archive/"`
	ReportPrefix  string `env:"REPORT_PREFIX" envDefault:"reports/retention/"`
	// InboundPrefix is where SES stores raw mail, and InboundRawDays how long the bucket's
	// lifecycle keeps it: a message destroyed sooner has its raw copy destroyed too.
	InboundPrefix  string `env:"INBOUND_PREFIX" envDefault:"inbound/"`
	InboundRawDays int    `env:"INBOUND_RAW_DAYS" envDefault:"30"`
	// DryRun makes every pass report what it would delete and delete nothing.
	DryRun bool `env:"DRY_RUN" envDefault:"false"`
	// Batch is how many messages are decided and deleted together (at most 1,000).
	Batch int `env:"BATCH" envDefault:"500"`
	// Every is how often a pass starts (once per UTC day for 24h); FullEvery how often a pass
	// walks every archived day even when no policy or hold changed.
	Every     time.Duration `env:"RUN_EVERY" envDefault:"24h"`
	FullEvery time.Duration `env:"FULL_EVERY" envDefault:"168h"`
}

// Check reports configuration the job cannot run with.
func (c Config) Check() error {
	switch {
	case c.Batch < 1 || c.Batch > 1000:
		return fmt.Errorf("BATCH is %d; it must be from 1 to 1000", c.Batch)
	case c.Every < time.Hour:
		return fmt.Errorf("RUN_EVERY is %s; it must be at least 1h", c.Every)
	case c.InboundRawDays < 0:
		return fmt.Errorf("INBOUND_RAW_DAYS is %d; it must be 0 or more", c.InboundRawDays)
	case c.FullEvery < c.Every:
		return fmt.Errorf("FULL_EVERY (%s) must be at least RUN_EVERY (%s)", c.FullEvery, c.Every)
	}
	return nil
}

// Event is what an invocation is given. The schedule sends {}; a person may invoke the function
// with {"dryRun": true} to have a report of what would be deleted now, whatever DRY_RUN says: it
// starts a dry pass (or goes on with the one under way) and deletes nothing.
type Event struct {
	DryRun bool `json:"dryRun,omitempty"`
}

// Handler runs the job.
type Handler struct {
	job, dry *retention.Job
	log      *slog.Logger
}

// New wires the handler to AWS through clients.
func New(cfg Config, clients awsclient.Clients, log *slog.Logger) *Handler {
	return NewHandler(NewJob(cfg, clients), log)
}

// NewJob wires the job to AWS through clients.
func NewJob(cfg Config, clients awsclient.Clients) *retention.Job {
	store := s3store.New(clients.S3, cfg.MailBucket)
	return &retention.Job{
		Index:         dynamo.NewRetentionArchive(clients.DynamoDB, cfg.ArchiveTable),
		Objects:       store,
		Reports:       store,
		Settings:      dynamo.NewDirectory(clients.DynamoDB, cfg.DirectoryTable, ""),
		State:         dynamo.NewRetentionState(clients.DynamoDB, cfg.StateTable, cfg.DirectoryTable),
		ArchivePrefix: cfg.ArchivePrefix,
		ReportPrefix:  cfg.ReportPrefix,
		RawPrefix:     cfg.InboundPrefix,
		RawDays:       cfg.InboundRawDays,
		Batch:         cfg.Batch,
		DryRun:        cfg.DryRun,
		Every:         cfg.Every,
		FullEvery:     cfg.FullEvery,
		Now:           time.Now,
	}
}

// NewHandler runs job; a dry run of the same job is kept for invocations that ask for one, and
// starts a pass whenever asked rather than once a day.
func NewHandler(job *retention.Job, log *slog.Logger) *Handler {
	dry := *job
	dry.DryRun, dry.Every = true, time.Nanosecond
	return &Handler{job: job, dry: &dry, log: log}
}

// Handle runs one invocation of the job. An error leaves the cursor where the work stopped: the
// retry, or the next scheduled invocation, goes on from there and deletes nothing twice.
func (h *Handler) Handle(ctx context.Context, ev Event) (retention.Result, error) {
	job := h.job
	if ev.DryRun {
		job = h.dry
	}
	res, err := job.Run(ctx)
	t := res.Tally
	h.log.InfoContext(ctx, "retention", "outcome", res.Outcome, "run", res.Run, "dryRun", res.DryRun,
		"examined", t.Examined, "deleted", t.Deleted, "wouldDelete", t.WouldDelete, "held", t.Held,
		"locked", t.Locked, "cancelled", t.Cancelled, "report", res.Report)
	if err != nil {
		h.log.ErrorContext(ctx, "retention failed", "kind", fault.KindOf(err).String(), "err", err)
	}
	return res, err
}

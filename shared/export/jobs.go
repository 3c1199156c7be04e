package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// LeaseSlack is how long past its stopping time an invocation holds a job: another invocation
// that finds the job leased leaves it alone until then. Lambda stops an invocation after 15
// minutes at most.
const LeaseSlack = 15 * time.Minute

// claim takes the job for runner: it fails with fault.Conflict while another invocation's lease
// runs, or when another invocation saved the job since it was read.
func claim(ctx context.Context, jobs Jobs, j *Job, runner string, now, until time.Time) error {
	if j.Runner != "" && j.Runner != runner && j.LeaseUntil.After(now) {
		return fault.New(fault.Conflict, "export.claim", "the %s %s is being worked on by another invocation until %s",
			j.Kind, j.ID, j.LeaseUntil.Format(time.RFC3339))
	}
	j.Runner = runner
	return save(ctx, jobs, j, nil, now, until)
}

// save saves the job, renewing its lease.
func save(ctx context.Context, jobs Jobs, j *Job, part *Part, now, until time.Time) error {
	prev := *j
	j.UpdatedAt = now
	if until.Before(now) {
		until = now
	}
	j.LeaseUntil = until.Add(LeaseSlack)
	if err := jobs.Save(ctx, j, part); err != nil {
		*j = prev
		return err
	}
	return nil
}

// release gives up the job's lease when an invocation stops with the job still running, so the
// next one need not wait for the lease to run out. Best effort: the lease runs out anyway.
func release(ctx context.Context, jobs Jobs, j *Job, runner string, now time.Time) {
	if j.State != StateRunning || j.Runner != runner {
		return
	}
	// The invocation's own context may be what ran out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	prev := *j
	j.Runner, j.LeaseUntil, j.UpdatedAt = "", time.Time{}, now
	if err := jobs.Save(ctx, j, nil); err != nil {
		*j = prev
	}
}

// fail records that a job cannot go on. What the caller may read is the error's message for
// its kind; the cause is for the log.
func fail(ctx context.Context, jobs Jobs, j *Job, cause error, now time.Time) error {
	j.State = StateFailed
	j.Error = fault.MessageOf(cause)
	if j.Error == "" {
		j.Error = "internal error"
	}
	j.Runner, j.LeaseUntil = "", time.Time{}
	j.UpdatedAt = now
	if err := jobs.Save(ctx, j, nil); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// retryable reports whether a job that stopped with err continues in a later invocation (the
// error is transient, or another invocation has the job) rather than failing.
func retryable(err error) bool {
	return fault.Is(err, fault.Transient) || fault.Is(err, fault.Conflict)
}

// randomID is the default id of jobs and restores.
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// create saves a new job; when a job with its id exists, the same request (same says so) gets
// that job back, so a retried start changes nothing, and another request is a Conflict.
func create(ctx context.Context, jobs Jobs, op string, job Job, same func(old Job) bool) (Job, error) {
	err := jobs.Create(ctx, job)
	if !fault.Is(err, fault.Conflict) {
		if err != nil {
			return Job{}, err
		}
		return job, nil
	}
	old, err := jobs.Get(ctx, job.Kind, job.ID)
	if err != nil {
		return Job{}, err
	}
	if !same(old) {
		return Job{}, fault.New(fault.Conflict, op, "%s %q exists with another request", aOrAn(job.Kind), job.ID)
	}
	return old, nil
}

func aOrAn(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

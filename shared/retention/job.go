package retention

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// Candidate is a message the day index lists: enough to read its record and to resume after it.
type Candidate struct {
	ID         string
	ReceivedAt time.Time
	// Position is where the index resumes after this message.
	Position string
}

// CandidateQuery asks for a page of one day's messages received after After (from the start of
// the day when zero) and up to Until, in order of receipt, after the message at From.
type CandidateQuery struct {
	Day   time.Time
	After time.Time
	Until time.Time
	From  string
	Limit int
}

// Index is the archive's metadata (DynamoDB): the day index, the records, and their deletion.
type Index interface {
	// Candidates returns a page, and whether the day may hold more.
	Candidates(ctx context.Context, q CandidateQuery) ([]Candidate, bool, error)
	// Records reads records by id, consistently; an id with no record is left out.
	Records(ctx context.Context, ids []string) (map[string]archive.Record, error)
	// Delete removes each record and every listing of it; a record already gone is no error.
	Delete(ctx context.Context, recs []archive.Record) error
}

// ObjectResult is what deleting one archived original did.
type ObjectResult struct {
	// Versions are the versions (and delete markers) deleted.
	Versions []string
	// Locked is true when S3 Object Lock kept a version: the object is still there.
	Locked bool
	// LockedUntil is when that lock ends; zero when it has no end (an S3 legal hold).
	LockedUntil time.Time
}

// Objects is where the originals are (S3, versioned).
type Objects interface {
	// DeleteVersions deletes every version of each key, never bypassing Object Lock. A key with
	// no version left is no error.
	DeleteVersions(ctx context.Context, keys []string) (map[string]ObjectResult, error)
	// FirstDay is the first UTC day with an original under prefix, or false when there is none.
	FirstDay(ctx context.Context, prefix string) (time.Time, bool, error)
}

// join combines the results of a message's objects: locked when any is, until the last lock ends.
func (o ObjectResult) join(p ObjectResult) ObjectResult {
	out := ObjectResult{Versions: append(o.Versions, p.Versions...), Locked: o.Locked || p.Locked}
	switch {
	case o.Locked && o.LockedUntil.IsZero(), p.Locked && p.LockedUntil.IsZero():
		// A lock with no end (an S3 legal hold) outlasts any date.
	case p.LockedUntil.After(o.LockedUntil):
		out.LockedUntil = p.LockedUntil
	default:
		out.LockedUntil = o.LockedUntil
	}
	return out
}

// Reports stores a run's report and its parts.
type Reports interface {
	PutReport(ctx context.Context, key string, body []byte) error
}

// Settings reads policies and holds with their kind's version; directory.SettingStore satisfies it.
type Settings interface {
	Settings(ctx context.Context, kind string) ([]directory.Setting, int64, error)
}

// State keeps cursors and destruction records (DynamoDB).
type State interface {
	// Cursor reads a job's cursor; the zero Cursor when there is none.
	Cursor(ctx context.Context, job string) (Cursor, error)
	// SaveCursor writes c on condition that the stored cursor is still at c.Version, and stores
	// it as c.Version+1; fault.Conflict when another invocation moved it.
	SaveCursor(ctx context.Context, job string, c Cursor) error
	// Claim writes destruction records in the pending state, each on condition that the
	// policies and holds are still at v: fault.Conflict when either changed. It returns how many
	// of ds (the first ones) it wrote, also with an error.
	Claim(ctx context.Context, ds []Destruction, v Versions) (int, error)
	// Finish writes destruction records in their final state.
	Finish(ctx context.Context, ds []Destruction) error
	// Destructions reads the records a pass (run at at) keeps for ids.
	Destructions(ctx context.Context, run string, at time.Time, ids []string) (map[string]Destruction, error)
}

// Destruction states.
const (
	StatePending   = "pending"   // claimed: the message is being destroyed
	StateDestroyed = "destroyed" // bytes and metadata deleted
	StateCancelled = "cancelled" // called off before anything was deleted
	StateLocked    = "locked"    // S3 Object Lock keeps the bytes; the message is kept whole
)

// Destruction is the record of one message's destruction: what, when, under which policy. It is
// written before anything is deleted and kept for good.
type Destruction struct {
	ID         string    `json:"id"`
	MessageID  string    `json:"messageId,omitempty"`
	Key        string    `json:"key"`
	SHA256     string    `json:"sha256,omitempty"`
	Size       int64     `json:"size"`
	ReceivedAt time.Time `json:"receivedAt"`
	FromAddr   string    `json:"fromAddr,omitempty"`
	Policy     string    `json:"policy"`
	KeepDays   int       `json:"keepDays"`
	KeepUntil  time.Time `json:"keepUntil"`
	// Run is the pass, At its time: a record's key, so a pass taken up again rewrites its own
	// record rather than adding a second.
	Run       string    `json:"run"`
	At        time.Time `json:"at"`
	State     string    `json:"state"`
	ClaimedAt time.Time `json:"claimedAt"`
	DoneAt    time.Time `json:"doneAt,omitzero"`
	// Versions are the S3 versions deleted.
	Versions    []string  `json:"versions,omitempty"`
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
	// Note says why a destruction was cancelled or how it was completed.
	Note string `json:"note,omitempty"`
}

// Hooks let tests act at the moments that matter for holds: after the job decided a batch and
// before it claims the destructions, and after the claim and before it deletes anything.
type Hooks struct {
	BeforeClaim  func(ctx context.Context, recs []archive.Record)
	BeforeDelete func(ctx context.Context, recs []archive.Record)
}

// Job destroys what has outlived its retention. See Run.
type Job struct {
	Index    Index
	Objects  Objects
	Reports  Reports
	Settings Settings
	State    State

	// ArchivePrefix is where the originals are ("archive/"); ReportPrefix where reports go
	// ("reports/retention/").
	ArchivePrefix string
	ReportPrefix  string
	// RawPrefix is where SES stores raw mail ("inbound/"), which the bucket's lifecycle expires
	// RawDays after receipt (its last version a day later, and S3 may run a day late). A message
	// destroyed before then has its raw copy destroyed with it; an empty RawPrefix leaves raw
	// copies to the lifecycle.
	RawPrefix string
	RawDays   int
	// Batch is how many messages are decided and deleted together.
	Batch int
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Every is how often a pass starts (at most once per slot of Every, in UTC); FullEvery how
	// often a pass walks every day even when nothing changed.
	Every, FullEvery time.Duration
	// Margin is how long before the invocation's deadline the job stops, leaving the rest to
	// the next invocation.
	Margin time.Duration

	Now   func() time.Time
	NewID func() string
	Hooks Hooks
}

// Defaults.
const (
	DefaultBatch     = 500
	DefaultEvery     = 24 * time.Hour
	DefaultFullEvery = 7 * 24 * time.Hour
	DefaultMargin    = 90 * time.Second
	// maxClaimTries bounds how often a batch is decided again because the policies or holds
	// changed under it.
	maxClaimTries = 5
	// noDeadline bounds an invocation whose context has no deadline.
	noDeadline = 15 * time.Minute
)

// Outcome says what an invocation did.
type Outcome string

const (
	Idle     Outcome = "idle"     // no pass was due
	Busy     Outcome = "busy"     // another invocation holds the lease
	Stopped  Outcome = "stopped"  // stopped before the deadline; the next invocation goes on
	Complete Outcome = "complete" // the pass is done
)

// Result is what Run did.
type Result struct {
	Outcome Outcome
	Run     string
	DryRun  bool
	// Tally is the pass's, so far.
	Tally Tally
	// Report is the key of the pass's summary report.
	Report string
}

// jobName is the cursor's name: a dry run keeps its own, so it never moves the real one.
func (j *Job) jobName() string {
	if j.DryRun {
		return "retention-dry-run"
	}
	return "retention"
}

// Run takes a pass up where it stopped, or starts one when one is due, and goes on until the
// pass is complete or the context's deadline (less Margin) is near.
//
// For each batch of messages the day index lists it reads the records, reads the policies and
// holds, and decides. Destructions are claimed (a pending destruction record each, written on
// condition that policies and holds are unchanged since they were read, in the same transaction),
// the holds are read once more, and only then are the S3 versions deleted, then the metadata,
// then the records marked destroyed. So a hold committed before the claim always wins, one
// committed between the claim and the second read wins too, and a message is never deleted
// without its record. The window left is the moment between that second read and the S3
// deletion: a hold committed then finds the message's destruction already committed (its record's
// claimedAt precedes the hold's createdAt), as it would a message already gone.
func (j *Job) Run(ctx context.Context) (Result, error) {
	const op = "retention.Run"
	stopAt := time.Now().Add(noDeadline)
	if d, ok := ctx.Deadline(); ok {
		stopAt = d
	}
	stopAt = stopAt.Add(-j.margin())
	name := j.jobName()
	me := j.newID()

	cur, err := j.State.Cursor(ctx, name)
	if err != nil {
		return Result{}, err
	}
	now := j.now()
	if cur.Pass == nil && !due(cur.Last, now, j.every()) {
		return Result{Outcome: Idle}, nil // the hourly tick between passes: one read, no write
	}
	// Leases are about the invocations' real deadlines, so they are on the wall clock.
	if cur.Owner != "" && time.Now().Before(cur.LeaseUntil) {
		return Result{Outcome: Busy}, nil
	}
	cur.Owner, cur.LeaseUntil = me, stopAt.Add(j.margin())
	if err := j.save(ctx, name, &cur); err != nil {
		if fault.Is(err, fault.Conflict) {
			return Result{Outcome: Busy}, nil
		}
		return Result{}, err
	}
	res, err := j.run(ctx, name, &cur, now, stopAt)
	// The lease goes with the invocation; an invocation that dies keeps it until its deadline.
	cur.Owner, cur.LeaseUntil = "", time.Time{}
	if serr := j.save(context.WithoutCancel(ctx), name, &cur); serr != nil && err == nil {
		err = fault.Wrap(fault.KindOf(serr), op, serr)
	}
	return res, err
}

func (j *Job) run(ctx context.Context, name string, cur *Cursor, now, stopAt time.Time) (Result, error) {
	if cur.Pass == nil {
		if !due(cur.Last, now, j.every()) {
			return Result{Outcome: Idle}, nil
		}
		r, err := j.rules(ctx)
		if err != nil {
			return Result{}, err
		}
		first, ok, err := j.Objects.FirstDay(ctx, j.archivePrefix())
		if err != nil {
			return Result{}, err
		}
		if !ok {
			first = time.Time{}
		}
		p := plan(cur.Last, r.policies, r.versions, first, now, j.fullEvery(), j.DryRun)
		id := j.newID()
		p.Run = now.UTC().Format("20060102T150405Z") + "-" + id[:min(len(id), 8)]
		p.RecheckAt = recheckAt(r.holds, now)
		cur.Pass = &p
		if err := j.save(ctx, name, cur); err != nil {
			return Result{}, err
		}
	}
	p := cur.Pass
	p.Invocations++
	outcome, err := j.walk(ctx, name, cur, stopAt)
	res := Result{Outcome: outcome, Run: p.Run, DryRun: p.DryRun, Tally: p.Tally, Report: j.reportKey(p.Run)}
	if err != nil && outcome != Complete {
		// What was done is reported; the next invocation goes on from the cursor.
		if rerr := j.writeSummary(context.WithoutCancel(ctx), p, time.Time{}); rerr != nil {
			err = fmt.Errorf("%w; and the report: %w", err, rerr)
		}
		return res, err
	}
	if outcome != Complete {
		return res, j.writeSummary(ctx, p, time.Time{})
	}
	finished := j.now()
	if err := j.writeSummary(ctx, p, finished); err != nil {
		return res, err
	}
	done := &Done{Run: p.Run, At: p.At, FinishedAt: finished, Full: p.Full, Versions: p.Versions,
		RecheckAt: earliest(p.RecheckAt, p.Tally.LockedUntil)}
	if done.FullAt = p.At; !p.Full && cur.Last != nil {
		done.FullAt = cur.Last.FullAt
	}
	cur.Pass, cur.Last = nil, done
	return res, j.save(ctx, name, cur)
}

// walk goes through the pass's windows a day and a page at a time, saving the cursor after each
// page that had messages.
func (j *Job) walk(ctx context.Context, name string, cur *Cursor, stopAt time.Time) (Outcome, error) {
	p := cur.Pass
	for p.Window < len(p.Windows) {
		w := p.Windows[p.Window]
		if p.Day.IsZero() {
			p.Day = w.From
		}
		if p.Day.After(dayOf(w.Until)) {
			p.Window, p.Day, p.After = p.Window+1, time.Time{}, ""
			continue
		}
		if time.Now().After(stopAt) {
			return Stopped, j.save(ctx, name, cur)
		}
		page, more, err := j.Index.Candidates(ctx, CandidateQuery{Day: p.Day, After: w.After, Until: w.Until, From: p.After, Limit: j.batch()})
		if err != nil {
			return Stopped, err
		}
		if len(page) > 0 {
			if err := j.decideBatch(ctx, name, cur, page); err != nil {
				return Stopped, err
			}
			p.After = page[len(page)-1].Position
		}
		if !more {
			p.Day, p.After = p.Day.Add(Day), ""
		}
		if len(page) > 0 {
			p.Claimed = nil
			if err := j.save(ctx, name, cur); err != nil {
				return Stopped, err
			}
		}
	}
	return Complete, nil
}

// rules are the policies and holds a batch is decided with.
type rules struct {
	policies []Policy
	holds    []Hold
	versions Versions
}

func (j *Job) rules(ctx context.Context) (rules, error) {
	var r rules
	ps, pv, err := j.Settings.Settings(ctx, PolicyKind)
	if err != nil {
		return r, err
	}
	hs, hv, err := j.Settings.Settings(ctx, HoldKind)
	if err != nil {
		return r, err
	}
	for _, s := range ps {
		p, err := PolicyOf(s)
		if err != nil {
			return r, err
		}
		r.policies = append(r.policies, p)
	}
	for _, s := range hs {
		h, err := HoldOf(s)
		if err != nil {
			return r, err
		}
		r.holds = append(r.holds, h)
	}
	r.versions = Versions{Policies: pv, Holds: hv}
	return r, nil
}

// line is one message in a report part.
type line struct {
	ID          string    `json:"id"`
	Key         string    `json:"key"`
	ReceivedAt  time.Time `json:"receivedAt"`
	Action      string    `json:"action"`
	Policy      string    `json:"policy,omitempty"`
	KeepUntil   time.Time `json:"keepUntil,omitzero"`
	HeldBy      []string  `json:"heldBy,omitempty"`
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
	Note        string    `json:"note,omitempty"`
}

// Actions in report lines.
const (
	actionDeleted     = "deleted"
	actionWouldDelete = "would-delete"
	actionHeld        = "held"
	actionLocked      = "locked"
	actionCancelled   = "cancelled"
)

// decideBatch decides one page of candidates and, unless this is a dry run, destroys what it
// may: see Run for the order of the steps.
func (j *Job) decideBatch(ctx context.Context, name string, cur *Cursor, page []Candidate) error {
	const op = "retention.batch"
	p := cur.Pass
	ids := make([]string, len(page))
	for i, c := range page {
		ids[i] = c.ID
	}
	// An earlier invocation stopped inside this batch after claiming: its claims are settled
	// here, including those of messages it deleted, which the index no longer lists.
	var earlier map[string]Destruction
	if len(p.Claimed) > 0 && !p.DryRun {
		var err error
		if earlier, err = j.State.Destructions(ctx, p.Run, p.At, p.Claimed); err != nil {
			return err
		}
		for _, id := range p.Claimed {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	recs, err := j.Index.Records(ctx, ids)
	if err != nil {
		return err
	}
	var (
		t       Tally
		lines   []line
		del     []archive.Record
		verdict map[string]Verdict
		r       rules
		claimed time.Time // when the batch's destructions were claimed
	)
	for try := 1; ; try++ {
		if r, err = j.rules(ctx); err != nil {
			return err
		}
		t, lines, del, verdict = Tally{}, nil, nil, map[string]Verdict{}
		for _, id := range ids {
			rec, ok := recs[id]
			if !ok {
				switch d, ok := earlier[id]; {
				case ok && d.State == StatePending:
					t.Examined++ // settled below
				case ok && d.State == StateDestroyed:
					// Destroyed by the attempt that stopped, before it could count it.
					t.Examined++
					t.Deleted++
					t.count(&t.ByPolicy, d.Policy)
					lines = append(lines, line{ID: d.ID, Key: d.Key, ReceivedAt: d.ReceivedAt, Action: actionDeleted, Policy: d.Policy, KeepUntil: d.KeepUntil})
				default:
					t.Gone++
				}
				continue
			}
			v := Decide(rec, r.policies, r.holds, p.At)
			verdict[id] = v
			t.Examined++
			switch {
			case v.Delete:
				del = append(del, rec)
			case v.Policy == "":
				t.NoPolicy++
			case v.Forever:
				t.Forever++
			case p.At.Before(v.KeepUntil):
				t.Kept++
			default:
				t.Held++
				for _, h := range v.HeldBy {
					t.count(&t.ByHold, h)
				}
				lines = append(lines, lineOf(rec, v, actionHeld, ""))
			}
		}
		if p.DryRun {
			for _, rec := range del {
				v := verdict[rec.ID]
				t.WouldDelete++
				t.count(&t.ByPolicy, v.Policy)
				lines = append(lines, lineOf(rec, v, actionWouldDelete, ""))
			}
			return j.finishBatch(ctx, p, t, lines)
		}
		if len(del) == 0 {
			break
		}
		if j.Hooks.BeforeClaim != nil {
			j.Hooks.BeforeClaim(ctx, del)
		}
		// The cursor names the messages before their claims exist, so that an invocation that
		// stops after claiming finds the claims again.
		before := len(p.Claimed)
		for _, rec := range del {
			if !slices.Contains(p.Claimed, rec.ID) {
				p.Claimed = append(p.Claimed, rec.ID)
			}
		}
		if len(p.Claimed) > before {
			if err := j.save(ctx, name, cur); err != nil {
				return err
			}
		}
		claims := make([]Destruction, len(del))
		claimed = j.now()
		for i, rec := range del {
			claims[i] = destructionOf(rec, verdict[rec.ID], p, claimed)
		}
		n, err := j.State.Claim(ctx, claims, r.versions)
		if err == nil {
			break
		}
		if !fault.Is(err, fault.Conflict) {
			return err
		}
		if try == maxClaimTries {
			return fault.Wrap(fault.Transient, op, fmt.Errorf("policies or holds kept changing while a batch was claimed: %w", err))
		}
		// The claims committed before the condition failed: the next try claims those messages
		// again under the same keys or, if a hold now covers them, cancels below.
		for _, c := range claims[:n] {
			if earlier == nil {
				earlier = map[string]Destruction{}
			}
			earlier[c.ID] = c
		}
	}

	if len(del) > 0 && j.Hooks.BeforeDelete != nil {
		j.Hooks.BeforeDelete(ctx, del)
	}
	// The second read: a hold or policy committed since the claim still keeps its messages.
	var cancelled []Destruction
	if len(del) > 0 {
		again, err := j.rules(ctx)
		if err != nil {
			return err
		}
		if again.versions != r.versions {
			keep := del[:0:0]
			for _, rec := range del {
				v := Decide(rec, again.policies, again.holds, p.At)
				if v.Delete {
					keep = append(keep, rec)
					continue
				}
				d := destructionOf(rec, verdict[rec.ID], p, claimed)
				d.State, d.DoneAt, d.Note = StateCancelled, j.now(), cancelNote(v)
				cancelled = append(cancelled, d)
				t.Cancelled++
				lines = append(lines, lineOf(rec, v, actionCancelled, d.Note))
				if len(v.HeldBy) > 0 {
					t.Held++
					for _, h := range v.HeldBy {
						t.count(&t.ByHold, h)
					}
				}
			}
			del = keep
		}
	}
	if err := j.State.Finish(ctx, cancelled); err != nil {
		return err
	}

	var settled []Destruction
	if len(del) > 0 {
		var keys []string
		for _, rec := range del {
			keys = append(keys, j.objectKeys(rec, p.At)...)
		}
		objs, err := j.Objects.DeleteVersions(ctx, keys)
		if err != nil {
			return err
		}
		var gone []archive.Record
		var done []Destruction
		for _, rec := range del {
			var o ObjectResult
			for _, k := range j.objectKeys(rec, p.At) {
				o = o.join(objs[k])
			}
			v := verdict[rec.ID]
			d := destructionOf(rec, v, p, claimed)
			d.DoneAt, d.Versions = j.now(), o.Versions
			if o.Locked {
				d.State, d.LockedUntil = StateLocked, o.LockedUntil
				d.Note = "S3 Object Lock keeps the original; the message is kept and tried again when the lock ends"
				t.Locked++
				if !o.LockedUntil.IsZero() {
					t.LockedUntil = earliest(t.LockedUntil, o.LockedUntil)
				}
				lines = append(lines, lineOf(rec, v, actionLocked, ""))
				lines[len(lines)-1].LockedUntil = o.LockedUntil
			} else {
				d.State = StateDestroyed
				gone = append(gone, rec)
				t.Deleted++
				t.count(&t.ByPolicy, v.Policy)
				lines = append(lines, lineOf(rec, v, actionDeleted, ""))
			}
			done = append(done, d)
		}
		if err := j.Index.Delete(ctx, gone); err != nil {
			return err
		}
		settled = append(settled, done...)
	}

	// Claims an earlier attempt left that this one did not take up again: a message deleted
	// before that attempt stopped is destroyed; one now kept is cancelled.
	claimedNow := map[string]bool{}
	for _, rec := range del {
		claimedNow[rec.ID] = true
	}
	for _, d := range cancelled {
		claimedNow[d.ID] = true
	}
	for id, d := range earlier {
		if d.State != StatePending || claimedNow[id] {
			continue
		}
		d.DoneAt = j.now()
		if _, present := recs[id]; !present {
			d.State, d.Note = StateDestroyed, "completed by a later invocation of the run"
			t.Deleted++
			t.count(&t.ByPolicy, d.Policy)
			lines = append(lines, line{ID: d.ID, Key: d.Key, ReceivedAt: d.ReceivedAt, Action: actionDeleted, Policy: d.Policy, KeepUntil: d.KeepUntil, Note: d.Note})
		} else {
			v := verdict[id]
			d.State, d.Note = StateCancelled, cancelNote(v)
			t.Cancelled++
		}
		settled = append(settled, d)
	}
	if err := j.State.Finish(ctx, settled); err != nil {
		return err
	}
	return j.finishBatch(ctx, p, t, lines)
}

func cancelNote(v Verdict) string {
	switch {
	case len(v.HeldBy) > 0:
		return fmt.Sprintf("held by %v", v.HeldBy)
	case v.Policy == "":
		return "no policy applies any more"
	case v.Forever:
		return "policy " + v.Policy + " now keeps it forever"
	}
	return "policy " + v.Policy + " now keeps it until " + v.KeepUntil.Format(time.RFC3339)
}

// finishBatch adds the batch to the pass's tally and writes its report lines as a part.
func (j *Job) finishBatch(ctx context.Context, p *Pass, t Tally, lines []line) error {
	if len(lines) > 0 {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return fault.Wrap(fault.Internal, "retention.report", err)
			}
		}
		p.Parts++
		if err := j.Reports.PutReport(ctx, j.partKey(p.Run, p.Parts), buf.Bytes()); err != nil {
			p.Parts--
			return err
		}
	}
	p.Tally.add(t)
	return nil
}

func lineOf(rec archive.Record, v Verdict, action, note string) line {
	return line{ID: rec.ID, Key: rec.Key, ReceivedAt: rec.ReceivedAt, Action: action, Policy: v.Policy,
		KeepUntil: v.KeepUntil, HeldBy: v.HeldBy, Note: note}
}

func destructionOf(rec archive.Record, v Verdict, p *Pass, at time.Time) Destruction {
	return Destruction{
		ID: rec.ID, MessageID: rec.MessageID, Key: rec.Key, SHA256: rec.SHA256, Size: rec.Size,
		ReceivedAt: rec.ReceivedAt, FromAddr: rec.FromAddress(), Policy: v.Policy, KeepDays: v.KeepDays,
		KeepUntil: v.KeepUntil, Run: p.Run, At: p.At, State: StatePending, ClaimedAt: at,
	}
}

func (t *Tally) count(m *map[string]int, k string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[k]++
}

func (t *Tally) add(u Tally) {
	t.Examined += u.Examined
	t.Deleted += u.Deleted
	t.WouldDelete += u.WouldDelete
	t.Held += u.Held
	t.Kept += u.Kept
	t.Forever += u.Forever
	t.NoPolicy += u.NoPolicy
	t.Locked += u.Locked
	t.Cancelled += u.Cancelled
	t.Gone += u.Gone
	for k, n := range u.ByPolicy {
		for range n {
			t.count(&t.ByPolicy, k)
		}
	}
	for k, n := range u.ByHold {
		for range n {
			t.count(&t.ByHold, k)
		}
	}
	t.LockedUntil = earliest(t.LockedUntil, u.LockedUntil)
}

// Report is a pass's summary, written to ReportPrefix/<run>.json at the end of every invocation
// and when the pass completes. Its parts (JSON Lines, one message each) list every message
// deleted, that would be deleted (dry run), held, locked or whose destruction was cancelled.
type Report struct {
	Run         string    `json:"run"`
	DryRun      bool      `json:"dryRun"`
	Full        bool      `json:"full"`
	At          time.Time `json:"at"`
	Complete    bool      `json:"complete"`
	FinishedAt  time.Time `json:"finishedAt,omitzero"`
	Windows     []Window  `json:"windows"`
	Versions    Versions  `json:"versions"`
	Invocations int       `json:"invocations"`
	Tally
	Parts []string `json:"parts"`
}

func (j *Job) writeSummary(ctx context.Context, p *Pass, finished time.Time) error {
	rep := Report{Run: p.Run, DryRun: p.DryRun, Full: p.Full, At: p.At, Complete: !finished.IsZero(),
		FinishedAt: finished, Windows: p.Windows, Versions: p.Versions, Invocations: p.Invocations,
		Tally: p.Tally, Parts: []string{}}
	if rep.Windows == nil {
		rep.Windows = []Window{}
	}
	for i := 1; i <= p.Parts; i++ {
		rep.Parts = append(rep.Parts, j.partKey(p.Run, i))
	}
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fault.Wrap(fault.Internal, "retention.report", err)
	}
	return j.Reports.PutReport(ctx, j.reportKey(p.Run), body)
}

func (j *Job) reportKey(run string) string { return j.reportPrefix() + run + ".json" }

func (j *Job) partKey(run string, n int) string {
	return fmt.Sprintf("%s%s/%06d.jsonl", j.reportPrefix(), run, n)
}

func (j *Job) save(ctx context.Context, name string, c *Cursor) error {
	if err := j.State.SaveCursor(ctx, name, *c); err != nil {
		return err
	}
	c.Version++
	return nil
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now().UTC()
	}
	return time.Now().UTC()
}

func (j *Job) newID() string {
	if j.NewID != nil {
		return j.NewID()
	}
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (j *Job) batch() int {
	if j.Batch > 0 {
		return j.Batch
	}
	return DefaultBatch
}

func (j *Job) every() time.Duration {
	if j.Every > 0 {
		return j.Every
	}
	return DefaultEvery
}

func (j *Job) fullEvery() time.Duration {
	if j.FullEvery > 0 {
		return j.FullEvery
	}
	return DefaultFullEvery
}

func (j *Job) margin() time.Duration {
	if j.Margin > 0 {
		return j.Margin
	}
	return DefaultMargin
}

// rawLifecycleDays is how long after RawDays a raw copy may still be there: a day for its
// noncurrent version, and S3's lifecycle may run a day or so late.
const rawLifecycleDays = 3

// objectKeys are the objects that hold a message's bytes at t: its archived original, and the raw
// copy SES wrote while the lifecycle may not yet have expired it.
func (j *Job) objectKeys(rec archive.Record, t time.Time) []string {
	keys := []string{rec.Key}
	if j.RawPrefix != "" && strings.HasPrefix(rec.RawKey, j.RawPrefix) && rec.RawKey != rec.Key &&
		t.Before(rec.ReceivedAt.Add(time.Duration(j.RawDays+rawLifecycleDays)*Day)) {
		keys = append(keys, rec.RawKey)
	}
	return keys
}

func (j *Job) archivePrefix() string {
	if j.ArchivePrefix != "" {
		return j.ArchivePrefix
	}
	return "archive/"
}

func (j *Job) reportPrefix() string {
	if j.ReportPrefix != "" {
		return j.ReportPrefix
	}
	return "reports/retention/"
}

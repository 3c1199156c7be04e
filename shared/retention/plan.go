package retention

import (
	"slices"
	"time"
)

// Versions are the versions of the policy and hold settings a decision was made with: the
// directory raises a kind's version with every change to any setting of it.
type Versions struct {
	Policies int64 `json:"policies"`
	Holds    int64 `json:"holds"`
}

// Window is a stretch of the day index a pass walks: the messages received after After (none
// before when zero) and up to Until, both in UTC, in the day partitions from From to Until's day.
type Window struct {
	From  time.Time `json:"from"`
	After time.Time `json:"after,omitzero"`
	Until time.Time `json:"until"`
}

// Cursor is a job's state between invocations: the pass under way and where it is, the last
// pass completed, and the lease that keeps two invocations from running at once.
type Cursor struct {
	// Version is the version read; every save is conditional on it.
	Version    int64     `json:"version"`
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
	Pass       *Pass     `json:"pass,omitempty"`
	Last       *Done     `json:"last,omitempty"`
}

// Pass is one walk over the day index, which may take several invocations.
type Pass struct {
	Run    string `json:"run"`
	DryRun bool   `json:"dryRun,omitempty"`
	// Full passes walk every day from the first archived one; incremental ones only the days
	// where messages came of age since the last pass.
	Full bool `json:"full"`
	// At is the pass's "now": every decision of the pass is made at At, whatever the invocation.
	At       time.Time `json:"at"`
	Windows  []Window  `json:"windows,omitempty"`
	Versions Versions  `json:"versions"`
	// RecheckAt is when a hold the pass read ends by itself (a future releasedAt).
	RecheckAt time.Time `json:"recheckAt,omitzero"`

	// Where the pass is: the window, the day in it, and the position after the last message done.
	Window int       `json:"window"`
	Day    time.Time `json:"day,omitzero"`
	After  string    `json:"after,omitempty"`
	// Claimed are the messages of the batch under way whose destructions may be claimed and not
	// yet settled, so that an invocation taking the batch up again settles them.
	Claimed     []string `json:"claimed,omitempty"`
	Parts       int      `json:"parts,omitempty"`
	Invocations int      `json:"invocations"`
	Tally       Tally    `json:"tally"`
}

// Done is what the job keeps of the last pass it completed.
type Done struct {
	Run        string    `json:"run"`
	At         time.Time `json:"at"`
	FinishedAt time.Time `json:"finishedAt"`
	Full       bool      `json:"full"`
	// FullAt is the At of the last full pass.
	FullAt   time.Time `json:"fullAt"`
	Versions Versions  `json:"versions"`
	// RecheckAt is when something the pass could not delete may become deletable without any
	// setting changing (a lock running out, a hold's releasedAt); zero for never.
	RecheckAt time.Time `json:"recheckAt,omitzero"`
}

// Tally counts what a pass found.
type Tally struct {
	Examined    int `json:"examined"`
	Deleted     int `json:"deleted,omitempty"`
	WouldDelete int `json:"wouldDelete,omitempty"`
	// Held are messages past their policy that a hold keeps.
	Held     int `json:"held"`
	Kept     int `json:"kept"`     // within their policy's days
	Forever  int `json:"forever"`  // kept by a policy that keeps forever
	NoPolicy int `json:"noPolicy"` // kept because no policy applies
	// Locked are messages whose bytes S3 Object Lock keeps; they are kept whole and tried again
	// once the lock ends.
	Locked int `json:"locked"`
	// Cancelled are destructions claimed and then called off, because a hold or policy changed
	// between the claim and the deletion.
	Cancelled int `json:"cancelled"`
	// Gone are messages the index listed that had already been deleted.
	Gone int `json:"gone"`
	// ByPolicy counts deletions (or would-be deletions) per policy, ByHold held messages per hold.
	ByPolicy map[string]int `json:"byPolicy,omitempty"`
	ByHold   map[string]int `json:"byHold,omitempty"`
	// LockedUntil is when the first lock the pass met ends.
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
}

// due reports whether a new pass should start at now: at most one per slot of every (UTC days
// for 24h), so that an hourly schedule starts one pass a day however late in the hour it fires.
func due(last *Done, now time.Time, every time.Duration) bool {
	if last == nil {
		return true
	}
	if !last.RecheckAt.IsZero() && !now.Before(last.RecheckAt) {
		return true
	}
	return now.Truncate(every).After(last.At.Truncate(every))
}

// plan decides what a new pass at now walks. A full pass walks every day from first (the first
// day with archived mail) to now less the shortest policy. An incremental pass, when nothing that
// changes decisions has changed since the last pass (the policies, the holds, a hold or lock that
// ends by itself, an interval of fullEvery), walks only the messages that came of age since: for
// each number of days N a policy keeps mail, those received between last.At-N and now-N. Without
// a policy of a number of days nothing can expire, and the pass walks nothing.
func plan(last *Done, policies []Policy, v Versions, first time.Time, now time.Time, fullEvery time.Duration, dryRun bool) Pass {
	var days []int
	for _, p := range policies {
		if !p.Forever && p.KeepDays > 0 && !slices.Contains(days, p.KeepDays) {
			days = append(days, p.KeepDays)
		}
	}
	slices.Sort(days)
	p := Pass{At: now, Versions: v, DryRun: dryRun}
	p.Full = dryRun || last == nil || last.Versions != v || now.Sub(last.FullAt) >= fullEvery ||
		!last.RecheckAt.IsZero() && !now.Before(last.RecheckAt)
	if len(days) == 0 {
		return p
	}
	if p.Full {
		until := now.Add(-time.Duration(days[0]) * Day)
		if !first.IsZero() && !first.After(until) {
			p.Windows = []Window{{From: dayOf(first), Until: until}}
		}
		return p
	}
	var ws []Window
	for _, d := range days {
		keep := time.Duration(d) * Day
		after, until := last.At.Add(-keep), now.Add(-keep)
		if until.After(after) {
			ws = append(ws, Window{From: dayOf(after), After: after, Until: until})
		}
	}
	// Windows of nearby days overlap when passes were missed; walk each message once.
	slices.SortFunc(ws, func(a, b Window) int { return a.After.Compare(b.After) })
	var merged []Window
	for _, w := range ws {
		if n := len(merged); n > 0 && !w.After.After(merged[n-1].Until) {
			if w.Until.After(merged[n-1].Until) {
				merged[n-1].Until = w.Until
			}
			continue
		}
		merged = append(merged, w)
	}
	p.Windows = merged
	return p
}

// dayOf is the UTC day t falls on, at midnight.
func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// recheckAt is the first end of an active hold after now, zero for none.
func recheckAt(holds []Hold, now time.Time) time.Time {
	var at time.Time
	for _, h := range holds {
		if h.ReleasedAt.After(now) && (at.IsZero() || h.ReleasedAt.Before(at)) {
			at = h.ReleasedAt
		}
	}
	return at
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

package calendar

import (
	"math"
	"slices"
	"time"
)

// How wall-clock ranges become instants.
//
// A range such as 09:00–17:00 on a date runs from the first instant at which the calendar's
// clock shows 09:00 or later on that date to the first instant at which it shows 17:00 or later,
// and business time is the real time that passes inside such periods. On most days that is
// plain arithmetic from local midnight. Around a clock change it is what a person at the office
// sees: when clocks spring forward over 02:00–03:00, 01:00–04:00 lasts two hours and 02:10–02:40
// does not happen; when they fall back, a wall time that happens twice means its first
// occurrence, so 01:00–03:00 lasts three hours.
//
// time.Date alone does not give the edges: its choice of instant for a wall time that happens
// twice or never is unspecified and differs between zones (on the spring-forward day New York's
// 02:30 becomes 01:30 but London's 01:30 becomes 02:30; falling back, New York takes a repeated
// hour's first occurrence and London its second), which would make business time depend on how a
// zone's rules are written.

const day = 24 * time.Hour

// settle is how far from a clock change a day must be for its wall times to map one to one onto
// instants: more than any change moves the clock (Samoa skipped a whole day in 2011).
const settle = 2 * day

// period is one working range on one date, as instants: [start, end).
type period struct{ start, end time.Time }

// Add returns the instant at which d of business time has passed after t. Counting starts at
// t, or at the next working period when t is outside one; a deadline that falls on the end of
// a period stays there rather than moving to the start of the next. d <= 0 counts as 0: the
// result is t. The result is in the calendar's location.
func (c *Compiled) Add(t time.Time, d time.Duration) time.Time {
	t = t.In(c.loc)
	if d <= 0 {
		return t
	}
	w := c.walk(t)
	var buf [MaxRangesPerDay]period
	for {
		// Skip only while more than the skipped weeks remain, so the deadline itself is found by
		// walking and the end-of-period rule holds.
		if k := min(w.weeks(), int64((d-1)/c.weekly)); k > 0 {
			w.skip(k)
			d -= time.Duration(k) * c.weekly
		}
		for _, p := range w.next(buf[:0]) {
			if n := p.end.Sub(p.start); d > n {
				d -= n
				continue
			}
			return p.start.Add(d)
		}
	}
}

// Between returns the business time in [a, b); 0 when b is not after a.
func (c *Compiled) Between(a, b time.Time) time.Duration {
	if !a.Before(b) {
		return 0
	}
	w := c.walk(a)
	// A period of the date after b's can start before b only when clocks fall back over
	// midnight; none of a later date can.
	last := dayNumber(b.In(c.loc).Date()) + 1
	var total time.Duration
	var buf [MaxRangesPerDay]period
	for w.day <= last {
		if k := w.weeks(); k > 0 {
			if k = min(k, int64(b.Sub(w.mid)/(7*day))); k > 0 {
				w.skip(k)
				total = addSat(total, time.Duration(k)*c.weekly)
			}
		}
		for _, p := range w.next(buf[:0]) {
			if !p.start.Before(b) {
				return total
			}
			total = addSat(total, earlier(p.end, b).Sub(p.start))
		}
	}
	return total
}

// Working reports whether t is inside a working period.
func (c *Compiled) Working(t time.Time) bool {
	return c.Between(t, t.Add(time.Nanosecond)) > 0
}

// addSat adds without wrapping: business time between instants centuries apart can exceed what
// a Duration holds.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// walker yields a calendar's working periods date by date, forward from an instant. Periods
// come in time order and never overlap, and nothing before the starting instant is yielded.
type walker struct {
	c      *Compiled
	day    int64     // the date whose periods come next
	hol    int       // index in c.holidays of the first holiday on or after day
	cursor time.Time // periods are clipped to start here: the start instant, then the last end
	// day up to runEnd (exclusive) are plain: far enough from any clock change that each wall
	// time is local midnight (mid, for day) plus the time of day.
	mid    time.Time
	runEnd int64
}

func (c *Compiled) walk(from time.Time) walker {
	// A period of an earlier date ends no later than the first instant the clock shows this
	// date, which is no later than from: the walk can start on from's own date.
	n := dayNumber(from.In(c.loc).Date())
	hol, _ := slices.BinarySearch(c.holidays, n)
	w := walker{c: c, day: n, hol: hol, cursor: from}
	w.mid, w.runEnd = c.plainRun(n)
	return w
}

// next returns the periods of the walker's date, appended to buf, and moves on to the next date.
func (w *walker) next(buf []period) []period {
	c, n := w.c, w.day
	if n >= w.runEnd {
		w.mid, w.runEnd = c.plainRun(n)
	}
	plain, mid := n < w.runEnd, w.mid
	w.day++
	if plain {
		w.mid = mid.Add(day)
	}
	if w.hol < len(c.holidays) && c.holidays[w.hol] == n {
		w.hol++
		return buf
	}
	for _, s := range c.days[weekday(n)] {
		var start, end time.Time
		if plain {
			start, end = mid.Add(s.start), mid.Add(s.end)
		} else {
			start, end = c.reading(n, s.start), c.reading(n, s.end)
		}
		start = later(start, w.cursor)
		if !end.After(start) {
			continue // before the walk's start, or a range that a clock change skipped
		}
		buf = append(buf, period{start, end})
		w.cursor = end
	}
	return buf
}

// weeks returns how many whole weeks from the walker's date can be counted as c.weekly each
// without walking them: they hold no holiday, no clock change, and nothing before the cursor.
func (w *walker) weeks() int64 {
	if w.day >= w.runEnd {
		w.mid, w.runEnd = w.c.plainRun(w.day)
	}
	if w.day >= w.runEnd || w.cursor.After(w.mid) {
		return 0
	}
	k := (w.runEnd - w.day) / 7
	if w.hol < len(w.c.holidays) {
		k = min(k, (w.c.holidays[w.hol]-w.day)/7)
	}
	return k
}

// skip moves k weeks on, which weeks has said may be skipped.
func (w *walker) skip(k int64) {
	w.day += 7 * k
	// From the date rather than w.mid plus k weeks, which can overflow a Duration; the dates
	// skipped to are plain, so the two agree.
	w.mid, w.runEnd = w.c.plainRun(w.day)
	w.cursor = w.mid
}

// plainRun returns local midnight of date n and the end (exclusive) of the run of plain dates
// from n: dates at least settle from any clock change, so their wall times map one to one onto
// instants by adding the time of day to midnight. The run is empty (end n) when n is not plain.
func (c *Compiled) plainRun(n int64) (mid time.Time, end int64) {
	y, m, d := dateOf(n).Date()
	mid = time.Date(y, m, d, 0, 0, 0, 0, c.loc)
	if _, off := mid.Zone(); mid.Unix()+int64(off) != n*secondsPerDay {
		return mid, n // midnight itself was skipped by a clock change
	}
	zoneStart, zoneEnd := mid.ZoneBounds()
	if !zoneStart.IsZero() && mid.Sub(zoneStart) < settle {
		return mid, n
	}
	if zoneEnd.IsZero() {
		return mid, math.MaxInt64 // no change ever again
	}
	days := (zoneEnd.Sub(mid) - settle) / day
	if days <= 0 {
		return mid, n
	}
	return mid, n + int64(days)
}

// reading returns the first instant at which the clock shows date n at time of day tod, or
// later. Offsets are constant between a zone's changes, so within each stretch the clock runs
// with real time, and the answer lies in the stretch around time.Date's guess or the one before
// or after it.
func (c *Compiled) reading(n int64, tod time.Duration) time.Time {
	wall := n*secondsPerDay + int64(tod/time.Second)
	y, m, d := dateOf(n).Date()
	guess := time.Date(y, m, d, 0, 0, int(tod/time.Second), 0, c.loc)
	_, off := guess.Zone()
	start, end := guess.ZoneBounds()
	if !start.IsZero() {
		// The stretch before: if its clock reaches wall before it ends, that is the first time.
		_, before := start.Add(-time.Nanosecond).Zone()
		if u := wall - int64(before); u < start.Unix() {
			return time.Unix(u, 0).In(c.loc)
		}
	}
	u := time.Unix(wall-int64(off), 0)
	if !start.IsZero() && u.Before(start) {
		u = start // the clock jumped over wall into this stretch
	}
	if end.IsZero() || u.Before(end) {
		return u.In(c.loc)
	}
	// This stretch's clock never reaches wall: the next one's does, at its start or later.
	_, after := end.Zone()
	return later(end, time.Unix(wall-int64(after), 0)).In(c.loc)
}

const secondsPerDay = 24 * 60 * 60

// dayNumber numbers dates from 1970-01-01 (0), so dates can be counted and compared as integers.
func dayNumber(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / secondsPerDay
}

// dateOf is midnight UTC of date n, for its year, month and day.
func dateOf(n int64) time.Time { return time.Unix(n*secondsPerDay, 0).UTC() }

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func weekday(n int64) time.Weekday {
	// 1970-01-01 was a Thursday.
	return time.Weekday(((n+4)%7 + 7) % 7)
}

package calendar

// Holiday feeds in iCalendar (RFC 5545).
//
// Parsing is github.com/arran4/golang-ical: it is tagged and released, kept up, fuzzed by its
// authors, and reads what real exporters write (folded lines, quoted parameters, escaped text,
// properties between components with AcceptUnknownPropertyHandler). emersion/go-ical was the
// other candidate; it has only pseudo-versions, its RecurrenceSet reads EXDATE where it means
// RDATE, and its parameter decoder panics on a line such as "A;B=c". Neither expands
// recurrences nor reads a VTIMEZONE that is not an IANA name (Outlook writes Windows names such
// as "Singapore Standard Time"), so recurrences are github.com/teambition/rrule-go, the port of
// python-dateutil's rrule that go-ical uses too, and VTIMEZONE rules are read here with it.
//
// Every recurrence is expanded on the wall clock of its DTSTART (held as a UTC time.Time, which
// has no clock changes) and only then turned into instants, as RFC 5545 §3.3.10 describes: a
// yearly event at 00:00 Europe/London stays at 00:00 across summer time.

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	ics "github.com/arran4/golang-ical"
	"github.com/teambition/rrule-go"

	"github.com/mailroom/mailroom/shared/fault"
)

// MaxFeedBytes bounds the feed Holidays reads. A national feed of ten years is about 100 KiB.
const MaxFeedBytes = 1 << 20

// Bounds that keep a hostile feed from running away. Each is far above what a holiday feed
// needs, and each is reported when it is reached, never silently cut short.
const (
	// maxParams bounds the parameters of one content line: golang-ical copies the rest of the
	// line for every parameter, so a long line of them costs their number times its length.
	// Real lines have fewer than ten (an Outlook ATTENDEE has about eight).
	maxParams = 32
	// maxDepth bounds component nesting (VCALENDAR › VEVENT › VALARM is three): the parser
	// recurses per level.
	maxDepth = 8
	// maxInstances bounds the instances generated across the feed: a rule with BYHOUR and
	// BYMINUTE lists yields thousands a day, and RDATE lists are long.
	maxInstances = 100 * MaxHolidays
	// maxWalk bounds, in estimated nanoseconds (see walkCost), the time rrule-go spends walking
	// rules across the feed: about half a second at worst. A plain yearly rule over a range of
	// a few years costs about 1.5 ms of it, a daily rule 12 ms.
	maxWalk = 500 * time.Millisecond
	// maxEventDays bounds one event's length: longer is no holiday but a mistake, and the bound
	// keeps every duration well inside time.Duration.
	maxEventDays = 366
)

// Holidays reads an iCalendar feed (RFC 5545) and returns the dates its events take off, in the
// calendar's zone: "YYYY-MM-DD", sorted, unique, between from and to (inclusive dates).
//
// from and to count by their dates in loc, in years 1 to 9999. All-day events
// (DTSTART;VALUE=DATE) give every date they cover: DTEND is exclusive, DURATION counts days, and
// neither means one day. Timed events give every date of loc they overlap, so a few hours off
// take the whole day, and an event from midnight to midnight in another zone takes the two
// dates of loc it straddles: holiday feeds hardly have timed events, and half days are out of
// scope. Floating times (no TZID, no Z) are read in loc. A TZID is an IANA zone or else a
// VTIMEZONE of the feed.
//
// RRULE, RDATE and EXDATE are honoured, and an instance moved or cancelled by an event with the
// same UID and a RECURRENCE-ID is replaced by it. STATUS:CANCELLED events are skipped.
// TRANSP:TRANSPARENT events are kept: Google's holiday calendars mark every holiday transparent
// so that it does not show people as busy.
//
// Errors are fault.Invalid with field "ics" and name the line or the event (by UID, else
// SUMMARY) at fault; a feed that gives more than MaxHolidays dates in the range is one of them.
func Holidays(r io.Reader, loc *time.Location, from, to time.Time) ([]string, error) {
	const op = "calendar.Holidays"
	if loc == nil {
		return nil, fault.New(fault.Internal, op, "no time zone given")
	}
	from, to = from.In(loc), to.In(loc)
	for _, b := range []struct {
		field string
		t     time.Time
	}{{"from", from}, {"to", to}} {
		if y := b.t.Year(); y < 1 || y > rrule.MAXYEAR {
			return nil, fault.InvalidField(op, b.field, "year %d is outside 1 to %d", y, rrule.MAXYEAR)
		}
	}
	first, last := dayNumber(from.Date()), dayNumber(to.Date())
	if last < first {
		return nil, fault.InvalidField(op, "to", "%s is before from, %s", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	invalid := func(format string, args ...any) error { return fault.InvalidField(op, "ics", format, args...) }

	data, err := io.ReadAll(io.LimitReader(r, MaxFeedBytes+1))
	if err != nil {
		return nil, fault.Wrap(fault.Transient, op, err)
	}
	if len(data) > MaxFeedBytes {
		return nil, invalid("the feed is larger than %d KiB; export fewer years", MaxFeedBytes>>10)
	}
	// Windows tools write a byte-order mark, which RFC 5545 does not allow and the parser
	// rejects.
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if err := checkContentLines(data); err != nil {
		return nil, invalid("%v", err)
	}
	cal, err := ics.ParseCalendarWithOptions(bytes.NewReader(data), ics.WithUnknownPropertyHandler(ics.AcceptUnknownPropertyHandler))
	if err != nil {
		return nil, invalid("not a valid iCalendar feed: %v", err)
	}
	events := cal.Events()
	if len(events) == 0 {
		return nil, invalid("the feed has no events (VEVENT)")
	}

	f := &feed{
		loc:      loc,
		first:    first,
		last:     last,
		floating: wallZone{loc},
		utc:      wallZone{time.UTC},
		zones:    make(map[string]icsZone),
		vtz:      make(map[string]*ics.VTimezone),
	}
	for _, tz := range cal.Timezones() {
		if id := propValue(&tz.ComponentBase, ics.ComponentPropertyTzid); id != "" {
			f.vtz[id] = tz
		}
	}
	// Instances replaced by an event with a RECURRENCE-ID, by UID.
	moved := make(map[string][]stamp)
	for i, e := range events {
		p := e.GetProperty(ics.ComponentPropertyRecurrenceId)
		uid := propValue(&e.ComponentBase, ics.ComponentPropertyUniqueId)
		if p == nil || uid == "" {
			continue
		}
		s, err := f.stamp(p.Value, p.ICalParameters)
		if err != nil {
			return nil, invalid("%s: RECURRENCE-ID: %v", eventName(e, i), err)
		}
		moved[uid] = append(moved[uid], s)
	}
	for i, e := range events {
		if err := f.event(e, moved); err != nil {
			return nil, invalid("%s: %v", eventName(e, i), err)
		}
	}
	out, err := f.dates()
	if err != nil {
		return nil, invalid("%v", err)
	}
	return out, nil
}

// checkContentLines reads the content lines (RFC 5545 §3.1) for what golang-ical reports poorly or
// handles slowly, so that errors name the physical line: a first line other than
// BEGIN:VCALENDAR, a line that is no NAME:value, too many parameters, too deep a nesting.
func checkContentLines(data []byte) error {
	depth, n, start := 0, 0, 0
	var line []byte
	flush := func() error {
		if len(line) == 0 {
			return nil
		}
		name, params, ok := lineHead(line)
		switch {
		case !ok && n == 0:
			return fmt.Errorf("not an iCalendar feed: it must begin with BEGIN:VCALENDAR")
		case !ok:
			return fmt.Errorf("line %d: %q is not a content line NAME:value", start, clipText(string(line)))
		case n == 0 && (name != "BEGIN" || !bytes.EqualFold(bytes.TrimSpace(line[6:]), []byte("VCALENDAR"))):
			return fmt.Errorf("not an iCalendar feed: it must begin with BEGIN:VCALENDAR, not %q", clipText(string(line)))
		case params > maxParams:
			return fmt.Errorf("line %d: more than %d parameters", start, maxParams)
		case name == "BEGIN":
			if depth++; depth > maxDepth {
				return fmt.Errorf("line %d: components nested more than %d deep", start, maxDepth)
			}
		case name == "END":
			depth--
		}
		n++
		line = line[:0]
		return nil
	}
	for i := 1; len(data) > 0; i++ {
		var phys []byte
		if j := bytes.IndexByte(data, '\n'); j >= 0 {
			phys, data = data[:j], data[j+1:]
		} else {
			phys, data = data, nil
		}
		phys = bytes.TrimSuffix(phys, []byte("\r"))
		// A line starting with a space or tab continues the one before.
		if len(phys) > 0 && (phys[0] == ' ' || phys[0] == '\t') && len(line) > 0 {
			line = append(line, phys[1:]...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		line, start = append(line, phys...), i
	}
	if err := flush(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("not an iCalendar feed: it is empty")
	}
	return nil
}

// lineHead reads a content line's name, in upper case, and counts its parameters: the
// semicolons before the first colon outside double quotes.
func lineHead(line []byte) (name string, params int, ok bool) {
	i := 0
	for i < len(line) && (line[i] == '-' || '0' <= line[i] && line[i] <= '9' || 'A' <= line[i]&^0x20 && line[i]&^0x20 <= 'Z') {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' && line[i] != ';' {
		return "", 0, false
	}
	name = strings.ToUpper(string(line[:i]))
	quoted := false
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			params++
		case c == ':' && !quoted:
			return name, params, true
		}
	}
	return "", 0, false
}

// feed is the state of one Holidays call.
type feed struct {
	loc         *time.Location
	first, last int64   // the range, as day numbers
	floating    icsZone // loc, for floating times
	utc         icsZone
	zones       map[string]icsZone // by TZID, resolved on first use
	vtz         map[string]*ics.VTimezone
	spans       [][2]int64 // dates taken off, as day numbers [from, to), clipped to the range
	instances   int
	walk        time.Duration // estimated, see walkCost
}

// near reports whether something on wall date d lasting reach days can touch the range. A wall
// clock of any zone is within a day of loc's, so two days of margin do.
func (f *feed) near(d, reach int64) bool {
	return d+reach >= f.first-2 && d <= f.last+2
}

// event adds the dates of one VEVENT and its recurrences.
func (f *feed) event(e *ics.VEvent, moved map[string][]stamp) error {
	cb := &e.ComponentBase
	if strings.EqualFold(propValue(cb, ics.ComponentPropertyStatus), "CANCELLED") {
		return nil
	}
	p := cb.GetProperty(ics.ComponentPropertyDtStart)
	if p == nil {
		return fmt.Errorf("no DTSTART")
	}
	start, err := f.stamp(p.Value, p.ICalParameters)
	if err != nil {
		return fmt.Errorf("DTSTART: %v", err)
	}
	ev := &occurrences{allDay: start.date, zone: start.zone, exDays: map[int64]bool{}, exInstants: map[int64]bool{}}
	if ev.allDay {
		ev.zone = f.floating
	}

	// How long each instance lasts.
	if p := cb.GetProperty(ics.ComponentPropertyDtEnd); p != nil {
		end, err := f.stamp(p.Value, p.ICalParameters)
		if err != nil {
			return fmt.Errorf("DTEND: %v", err)
		}
		recurs := cb.GetProperty(ics.ComponentPropertyRrule) != nil || cb.GetProperty(ics.ComponentPropertyRdate) != nil
		if err := f.length(ev, start, end, recurs); err != nil {
			return err
		}
	} else if v := propValue(cb, ics.ComponentPropertyDuration); v != "" {
		days, secs, err := parseICSDuration(v)
		if err != nil {
			return fmt.Errorf("DURATION: %v", err)
		}
		if days+secs/86400 > maxEventDays {
			return fmt.Errorf("lasts more than %d days", maxEventDays)
		}
		if ev.allDay {
			// A date-valued event lasts whole days; round a time part up.
			ev.days = max(days+(secs+86399)/86400, 1)
		} else {
			// RFC 5545 §3.3.6: days of a DURATION are nominal, the same wall time days later.
			ev.nominal, ev.days, ev.secs = true, days, time.Duration(secs)*time.Second
		}
		ev.reach = days + secs/86400 + 1
	} else if ev.allDay {
		ev.days, ev.reach = 1, 1
	}

	// Excluded instances: EXDATE, and instances moved by a RECURRENCE-ID unless this event is
	// itself such an instance.
	for _, p := range cb.GetProperties(ics.ComponentPropertyExdate) {
		for _, v := range strings.Split(p.Value, ",") {
			s, err := f.stamp(v, p.ICalParameters)
			if err != nil {
				return fmt.Errorf("EXDATE: %v", err)
			}
			if err := f.exclude(ev, s); err != nil {
				return fmt.Errorf("EXDATE: %v", err)
			}
		}
	}
	if cb.GetProperty(ics.ComponentPropertyRecurrenceId) == nil {
		for _, s := range moved[propValue(cb, ics.ComponentPropertyUniqueId)] {
			if err := f.exclude(ev, s); err != nil {
				return fmt.Errorf("RECURRENCE-ID: %v", err)
			}
		}
	}

	// DTSTART is always the first instance (RFC 5545 §3.8.5.3).
	if err := f.occur(ev, start.wall, nil); err != nil {
		return err
	}
	for _, p := range cb.GetProperties(ics.ComponentPropertyRdate) {
		period := strings.EqualFold(paramValue(p.ICalParameters, "VALUE"), "PERIOD")
		for _, v := range strings.Split(p.Value, ",") {
			if err := f.rdate(ev, v, p.ICalParameters, period); err != nil {
				return fmt.Errorf("RDATE: %v", err)
			}
		}
	}
	for _, p := range cb.GetProperties(ics.ComponentPropertyRrule) {
		if err := f.rrule(ev, p.Value, start.wall); err != nil {
			return fmt.Errorf("RRULE: %v", err)
		}
	}
	return nil
}

// length sets how long ev's instances last from its DTSTART start and DTEND end.
func (f *feed) length(ev *occurrences, start, end stamp, recurs bool) error {
	if ev.allDay {
		w, err := f.wallIn(end, ev.zone)
		if err != nil {
			return fmt.Errorf("DTEND: %v", err)
		}
		ev.days = dayNumber(w.Date()) - dayNumber(start.wall.Date())
		if ev.days < 0 {
			return fmt.Errorf("DTEND %s is before DTSTART %s", end.text, start.text)
		}
		if ev.days > maxEventDays {
			return fmt.Errorf("DTEND %s makes it last more than %d days", end.text, maxEventDays)
		}
		// Some exporters write DTEND equal to DTSTART for a one-day event.
		ev.days = max(ev.days, 1)
		ev.reach = ev.days
		return nil
	}
	// A single event far from the range needs no exact length, nor its VTIMEZONE read for that
	// year; its wall clocks, within a day of the instants, check it.
	if !recurs && !f.near(dayNumber(start.wall.Date()), maxEventDays) {
		switch d := dayNumber(end.wall.Date()) - dayNumber(start.wall.Date()); {
		case d < -1:
			return fmt.Errorf("DTEND %s is before DTSTART %s", end.text, start.text)
		case d > maxEventDays+1:
			return fmt.Errorf("DTEND %s makes it last more than %d days", end.text, maxEventDays)
		}
		return nil
	}
	s, err := start.instant()
	if err != nil {
		return fmt.Errorf("DTSTART: %v", err)
	}
	e, err := end.instant()
	if err != nil {
		return fmt.Errorf("DTEND: %v", err)
	}
	if e.Before(s) {
		return fmt.Errorf("DTEND %s is before DTSTART %s", end.text, start.text)
	}
	if dayNumber(e.Date())-dayNumber(s.Date()) > maxEventDays {
		return fmt.Errorf("DTEND %s makes it last more than %d days", end.text, maxEventDays)
	}
	// RFC 5545 §3.8.5.3: every instance lasts the same exact time as the first.
	ev.exact = e.Sub(s)
	ev.reach = int64(ev.exact/day) + 1
	return nil
}

// occurrences is what an event's instances share.
type occurrences struct {
	allDay bool
	zone   icsZone // the zone of DTSTART, on whose wall clock instances recur
	// All-day events last days; timed events last exact (from DTEND) or, when nominal (from
	// DURATION), days and secs of wall clock.
	days       int64
	exact      time.Duration
	nominal    bool
	secs       time.Duration
	reach      int64          // days an instance can reach past its start date, at most
	exDays     map[int64]bool // excluded dates of the wall clock, as day numbers
	exInstants map[int64]bool // excluded instants, in Unix seconds
}

// exclude marks s as no instance of ev. A date excludes every instance on it.
func (f *feed) exclude(ev *occurrences, s stamp) error {
	// An exclusion far from the range excludes nothing that reaches it.
	if !f.near(dayNumber(s.wall.Date()), ev.reach+1) {
		return nil
	}
	if s.date || ev.allDay {
		w, err := f.wallIn(s, ev.zone)
		if err != nil {
			return err
		}
		ev.exDays[dayNumber(w.Date())] = true
		return nil
	}
	t, err := s.instant()
	if err != nil {
		return err
	}
	ev.exInstants[t.Unix()] = true
	return nil
}

// occur adds the dates of ev's instance at wall clock w; end, if given, is the instant a PERIOD
// ends.
func (f *feed) occur(ev *occurrences, w time.Time, end *time.Time) error {
	if f.instances++; f.instances > maxInstances {
		return fmt.Errorf("recurs more than %d times across the feed", maxInstances)
	}
	d, reach := dayNumber(w.Date()), ev.reach
	if end != nil {
		reach = maxEventDays
	}
	if ev.exDays[d] || !f.near(d, reach) {
		return nil
	}
	if ev.allDay && end == nil {
		f.add(d, d+ev.days)
		return nil
	}
	s, err := ev.zone.instant(w)
	if err != nil {
		return err
	}
	if ev.exInstants[s.Unix()] {
		return nil
	}
	var e time.Time
	switch {
	case end != nil:
		e = *end
	case ev.nominal:
		if e, err = ev.zone.instant(w.AddDate(0, 0, int(ev.days)).Add(ev.secs)); err != nil {
			return err
		}
	default:
		e = s.Add(ev.exact)
	}
	// The dates of loc that [s, e) overlaps; an event that takes no time still takes its date.
	if e.After(s) {
		e = e.Add(-time.Nanosecond)
	} else {
		e = s
	}
	f.add(dayNumber(s.In(f.loc).Date()), dayNumber(e.In(f.loc).Date())+1)
	return nil
}

// add records the dates [a, b) that fall in the range.
func (f *feed) add(a, b int64) {
	a, b = max(a, f.first), min(b, f.last+1)
	if a < b {
		f.spans = append(f.spans, [2]int64{a, b})
	}
}

// rdate adds one RDATE value: a date, a date-time, or a PERIOD "start/end" or "start/duration".
func (f *feed) rdate(ev *occurrences, v string, params map[string][]string, period bool) error {
	if !period {
		s, err := f.stamp(v, params)
		if err != nil {
			return err
		}
		if !f.near(dayNumber(s.wall.Date()), ev.reach+1) {
			return nil
		}
		w, err := f.wallIn(s, ev.zone)
		if err != nil {
			return err
		}
		return f.occur(ev, w, nil)
	}
	a, b, ok := strings.Cut(v, "/")
	if !ok {
		return fmt.Errorf("%q is not a period start/end", clipText(v))
	}
	s, err := f.stamp(a, params)
	if err != nil {
		return err
	}
	if !f.near(dayNumber(s.wall.Date()), maxEventDays) {
		return nil
	}
	start, err := s.instant()
	if err != nil {
		return err
	}
	var end time.Time
	if strings.ContainsAny(b, "Pp") {
		days, secs, err := parseICSDuration(b)
		if err != nil {
			return err
		}
		if days+secs/86400 > maxEventDays {
			return fmt.Errorf("%q lasts more than %d days", clipText(v), maxEventDays)
		}
		end = start.Add(time.Duration(days)*day + time.Duration(secs)*time.Second)
	} else {
		e, err := f.stamp(b, params)
		if err != nil {
			return err
		}
		if end, err = e.instant(); err != nil {
			return err
		}
		if end.Before(start) || end.Sub(start) > maxEventDays*day {
			return fmt.Errorf("%q ends before it starts or lasts more than %d days", clipText(v), maxEventDays)
		}
	}
	w, err := f.wallIn(s, ev.zone)
	if err != nil {
		return err
	}
	return f.occur(ev, w, &end)
}

// rrule adds the instances of one RRULE of ev, which starts at wall clock start.
func (f *feed) rrule(ev *occurrences, v string, start time.Time) error {
	opt, utcUntil, err := ruleOption(v)
	if err != nil {
		return err
	}
	// Instances are wanted only where they can reach the range. The margins cover the widest
	// gap between a zone's wall clock and loc's.
	lo := dateOf(f.first).AddDate(0, 0, -int(ev.reach)-2)
	hi := dateOf(f.last).AddDate(0, 0, 3)
	if !opt.Until.IsZero() {
		switch {
		case opt.Until.Before(lo.AddDate(0, 0, -1)):
			return nil // ends before it could reach the range
		case opt.Until.After(hi.AddDate(0, 0, 1)):
			opt.Until = hi
		case utcUntil:
			if opt.Until, err = ev.zone.wall(opt.Until); err != nil {
				return err
			}
		}
	}
	opt.Dtstart = start
	return f.expand(opt, lo, hi, func(w time.Time) error { return f.occur(ev, w, nil) })
}

// ruleOption reads an RRULE value; utcUntil reports an UNTIL in UTC, which the caller must turn
// into the wall clock the rule is expanded on.
func ruleOption(v string) (opt *rrule.ROption, utcUntil bool, err error) {
	// rrule-go rejects what RFC 5545 allows: lower case, an empty part, X- parts. It also
	// reads BYEASTER, which is no part of RFC 5545 and indexes out of range for large values.
	var parts []string
	for _, part := range strings.Split(strings.ToUpper(v), ";") {
		switch {
		case part == "" || strings.HasPrefix(part, "X-"):
			continue
		case strings.HasPrefix(part, "BYEASTER="):
			return nil, false, fmt.Errorf("%q: BYEASTER is not part of RFC 5545", clipText(v))
		case strings.HasPrefix(part, "UNTIL="):
			utcUntil = strings.HasSuffix(part, "Z")
		}
		parts = append(parts, part)
	}
	if opt, err = rrule.StrToROption(strings.Join(parts, ";")); err != nil {
		return nil, false, fmt.Errorf("%q: %v", clipText(v), err)
	}
	// Rules that repeat within a day describe no days off, and rrule-go walks them second by
	// second.
	if opt.Freq > rrule.DAILY {
		return nil, false, fmt.Errorf("%q repeats within a day; days off repeat daily at most", clipText(v))
	}
	// The BY lists are sets. Duplicates would only multiply rrule-go's work.
	for _, l := range []*[]int{&opt.Bysetpos, &opt.Bymonth, &opt.Bymonthday, &opt.Byyearday, &opt.Byweekno, &opt.Byhour, &opt.Byminute, &opt.Bysecond} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	slices.SortFunc(opt.Byweekday, func(a, b rrule.Weekday) int { return cmp.Or(cmp.Compare(a.N(), b.N()), cmp.Compare(a.Day(), b.Day())) })
	opt.Byweekday = slices.Compact(opt.Byweekday)
	return opt, utcUntil, nil
}

// gregorianCycle is the Gregorian calendar's period: 400 years are 146097 days, 20871 weeks, so every
// date falls on the same weekday as 400 years before and every year has the same length.
const gregorianCycle = 400

// expand calls fn with each instance of the rule opt that starts in [lo, hi], and perhaps a few
// before lo, charging the walk to the feed's budget.
//
// rrule-go stops at UNTIL only when it finds an instance past it: a rule that matches nothing
// more, such as BYMONTH=2;BYMONTHDAY=30, is walked day by day to the year 9999. So the rule is
// expanded whole 400-year cycles later, where hi falls in the last gregorianCycle before 9999, which
// changes no instance but its year and bounds that walk. What remains is charged up front.
func (f *feed) expand(opt *rrule.ROption, lo, hi time.Time, fn func(time.Time) error) error {
	if opt.Until.IsZero() || opt.Until.After(hi) {
		opt.Until = hi
	}
	skipAhead(opt, lo)
	if opt.Dtstart.After(opt.Until) {
		return nil
	}
	years := max(0, (rrule.MAXYEAR-opt.Until.Year())/gregorianCycle*gregorianCycle)
	opt.Dtstart, opt.Until = opt.Dtstart.AddDate(years, 0, 0), opt.Until.AddDate(years, 0, 0)
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return err
	}
	days := dayNumber(rrule.MAXYEAR+1, 1, 1) - dayNumber(opt.Dtstart.Date())
	if f.walk += time.Duration(days) * walkCost(opt); f.walk > maxWalk {
		return fmt.Errorf("its recurrence rules take too long to expand; shorten the range, or end old rules with UNTIL or start them later")
	}
	next := r.Iterator()
	for t, ok := next(); ok; t, ok = next() {
		if err := fn(t.AddDate(-years, 0, 0)); err != nil {
			return err
		}
	}
	return nil
}

// walkCost is an upper estimate of what rrule-go v1.8.2 spends on each day of a rule that
// matches nothing, as measured: a daily rule pays for a whole period every day, and every
// BYSETPOS value is a pass over the period. BYHOUR, BYMINUTE and BYSECOND are multiplied out
// once, when the rule is built, so their product is charged as days.
func walkCost(opt *rrule.ROption) time.Duration {
	base := map[rrule.Frequency]int{rrule.YEARLY: 10, rrule.MONTHLY: 10, rrule.WEEKLY: 30, rrule.DAILY: 90}[opt.Freq]
	lists := len(opt.Bymonth) + len(opt.Bymonthday) + len(opt.Byyearday) + len(opt.Byweekno)
	times := max(len(opt.Byhour), 1) * max(len(opt.Byminute), 1) * max(len(opt.Bysecond), 1)
	return time.Duration(base*(2+len(opt.Bysetpos))/2+3*len(opt.Byweekday)+lists/2+times/1000) * time.Nanosecond
}

// skipAhead moves the start of a rule without COUNT forward by whole periods, to the last one
// that begins more than a period before lo. Its instances from lo on stay the same: the periods
// stay aligned to INTERVAL, and the month, day, weekday and time of the start, which the rule
// takes as defaults, are kept. With COUNT it cannot move: COUNT counts from the first start.
func skipAhead(opt *rrule.ROption, lo time.Time) {
	d := opt.Dtstart
	if opt.Count > 0 || !d.Before(lo) {
		return
	}
	n := max(opt.Interval, 1)
	days := int(dayNumber(lo.Date()) - dayNumber(d.Date()))
	var shift func(k int) time.Time
	var k int
	switch opt.Freq {
	case rrule.YEARLY:
		shift, k = func(k int) time.Time { return d.AddDate(k, 0, 0) }, lo.Year()-d.Year()
	case rrule.MONTHLY:
		shift, k = func(k int) time.Time { return d.AddDate(0, k, 0) }, (lo.Year()-d.Year())*12+int(lo.Month()-d.Month())
	case rrule.WEEKLY:
		shift, k = func(k int) time.Time { return d.AddDate(0, 0, 7*k) }, days/7
	case rrule.DAILY:
		shift, k = func(k int) time.Time { return d.AddDate(0, 0, k) }, days
	default:
		return
	}
	// Whole intervals, then one more back: a period can yield dates in the next one (a week
	// of BYWEEKNO that begins in December).
	if k = k/n*n - n; k <= 0 {
		return
	}
	s := shift(k)
	// AddDate overflows a 29th to 31st into the next month; such a start keeps its walk.
	if opt.Freq == rrule.YEARLY && s.Month() != d.Month() || opt.Freq <= rrule.MONTHLY && s.Day() != d.Day() {
		return
	}
	opt.Dtstart = s
}

// dates merges the spans into sorted, unique dates.
func (f *feed) dates() ([]string, error) {
	slices.SortFunc(f.spans, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	var merged [][2]int64
	total := int64(0)
	for _, s := range f.spans {
		if n := len(merged); n > 0 && s[0] <= merged[n-1][1] {
			if s[1] > merged[n-1][1] {
				total += s[1] - merged[n-1][1]
				merged[n-1][1] = s[1]
			}
			continue
		}
		merged = append(merged, s)
		total += s[1] - s[0]
	}
	if total > MaxHolidays {
		return nil, fmt.Errorf("the feed gives %d dates from %s to %s, more than the %d a calendar holds; import a shorter range",
			total, dateOf(f.first).Format(time.DateOnly), dateOf(f.last).Format(time.DateOnly), MaxHolidays)
	}
	var out []string
	for _, s := range merged {
		for d := s[0]; d < s[1]; d++ {
			out = append(out, dateOf(d).Format(time.DateOnly))
		}
	}
	return out, nil
}

// stamp is a DATE or DATE-TIME value.
type stamp struct {
	wall time.Time // the wall clock, as UTC
	date bool
	zone icsZone // for a date-time: its TZID, UTC, or loc for a floating time
	text string
}

func (s stamp) instant() (time.Time, error) { return s.zone.instant(s.wall) }

// stamp reads a DATE ("20261225") or DATE-TIME ("20261225T000000", with Z or a TZID) value.
func (f *feed) stamp(v string, params map[string][]string) (stamp, error) {
	s := stamp{text: v, zone: f.floating}
	var err error
	switch {
	case len(v) == 8:
		s.date = true
		s.wall, err = time.Parse("20060102", v)
	case len(v) == 16 && v[15] == 'Z':
		s.zone = f.utc
		s.wall, err = time.Parse("20060102T150405", v[:15])
	case len(v) == 15:
		if s.wall, err = time.Parse("20060102T150405", v); err != nil {
			break
		}
		if tzid := paramValue(params, "TZID"); tzid != "" {
			if s.zone, err = f.zone(tzid); err != nil {
				return stamp{}, err
			}
		}
	default:
		err = fmt.Errorf("not a date")
	}
	if err != nil {
		return stamp{}, fmt.Errorf("%q is not a date (20261225) or date-time (20261225T090000)", clipText(v))
	}
	switch vt := strings.ToUpper(paramValue(params, "VALUE")); vt {
	case "", "PERIOD":
	case "DATE", "DATE-TIME":
		if s.date != (vt == "DATE") {
			return stamp{}, fmt.Errorf("%q is not a %s, as VALUE=%s says", clipText(v), strings.ToLower(vt), vt)
		}
	default:
		return stamp{}, fmt.Errorf("%q: VALUE=%s is not a date or date-time", clipText(v), clipText(vt))
	}
	return s, nil
}

// wallIn is s on the wall clock of z: a date, or a time in z, as it stands; another time
// converted.
func (f *feed) wallIn(s stamp, z icsZone) (time.Time, error) {
	if s.date || s.zone == z {
		return s.wall, nil
	}
	t, err := s.instant()
	if err != nil {
		return time.Time{}, err
	}
	return z.wall(t)
}

// zone resolves a TZID: an IANA name, else the feed's VTIMEZONE of that name. IANA comes first
// because the database has a zone's history where an exporter's VTIMEZONE often has only its
// current rule.
func (f *feed) zone(tzid string) (icsZone, error) {
	if z, ok := f.zones[tzid]; ok {
		return z, nil
	}
	var z icsZone
	// "Local" is the machine's zone: a feed must mean the same on every machine.
	if loc, err := LoadZone(tzid); err == nil && tzid != "Local" {
		z = wallZone{loc}
	} else if tz := f.vtz[tzid]; tz != nil {
		vz, err := f.vzone(tz)
		if err != nil {
			return nil, fmt.Errorf("VTIMEZONE %q: %v", clipText(tzid), err)
		}
		z = vz
	} else {
		return nil, fmt.Errorf("TZID %q is neither an IANA time zone nor a VTIMEZONE of the feed", clipText(tzid))
	}
	f.zones[tzid] = z
	return z, nil
}

// icsZone turns wall clocks of a time zone into instants and back. Wall clocks are held as UTC.
type icsZone interface {
	instant(wall time.Time) (time.Time, error)
	wall(t time.Time) (time.Time, error)
}

// wallZone is a zone of the IANA database, UTC, or loc for floating times.
type wallZone struct{ loc *time.Location }

func (z wallZone) instant(w time.Time) (time.Time, error) {
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, z.loc), nil
}

func (z wallZone) wall(t time.Time) (time.Time, error) {
	t = t.In(z.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC), nil
}

// vzone is a VTIMEZONE (RFC 5545 §3.6.5): observances, each an offset from UTC that takes
// effect at its DTSTART and at each instance of its RRULE and RDATE.
type vzone struct {
	f     *feed
	obs   []observance    // by start
	years map[int][]onset // the onsets that matter for wall clocks in a year, sorted
}

type observance struct {
	start    time.Time // wall clock
	from, to time.Duration
	rule     *rrule.ROption
	rdates   []time.Time
}

type onset struct {
	at     time.Time // wall clock
	offset time.Duration
}

func (f *feed) vzone(tz *ics.VTimezone) (*vzone, error) {
	z := &vzone{f: f, years: make(map[int][]onset)}
	for _, c := range tz.Components {
		var cb *ics.ComponentBase
		switch c := c.(type) {
		case *ics.Standard:
			cb = &c.ComponentBase
		case *ics.Daylight:
			cb = &c.ComponentBase
		default:
			continue
		}
		var o observance
		p := cb.GetProperty(ics.ComponentPropertyDtStart)
		if p == nil {
			return nil, fmt.Errorf("an observance has no DTSTART")
		}
		s, err := f.stamp(p.Value, nil)
		if err != nil {
			return nil, fmt.Errorf("DTSTART: %v", err)
		}
		o.start = s.wall
		if o.from, err = parseUTCOffset(propValue(cb, "TZOFFSETFROM")); err != nil {
			return nil, fmt.Errorf("TZOFFSETFROM: %v", err)
		}
		if o.to, err = parseUTCOffset(propValue(cb, "TZOFFSETTO")); err != nil {
			return nil, fmt.Errorf("TZOFFSETTO: %v", err)
		}
		for _, p := range cb.GetProperties(ics.ComponentPropertyRdate) {
			for _, v := range strings.Split(p.Value, ",") {
				s, err := f.stamp(v, nil)
				if err != nil {
					return nil, fmt.Errorf("RDATE: %v", err)
				}
				o.rdates = append(o.rdates, s.wall)
			}
		}
		if v := propValue(cb, ics.ComponentPropertyRrule); v != "" {
			// UNTIL in UTC is near enough on the wall clock: it bounds changes months apart.
			if o.rule, _, err = ruleOption(v); err != nil {
				return nil, fmt.Errorf("RRULE: %v", err)
			}
			o.rule.Dtstart = o.start
		}
		z.obs = append(z.obs, o)
	}
	if len(z.obs) == 0 {
		return nil, fmt.Errorf("no STANDARD or DAYLIGHT observance")
	}
	slices.SortFunc(z.obs, func(a, b observance) int { return a.start.Compare(b.start) })
	return z, nil
}

// offset is the zone's offset from UTC at wall clock w. Within the hour a clock change skips or
// repeats it may be an hour out, which moves no date by more than that hour.
func (z *vzone) offset(w time.Time) (time.Duration, error) {
	onsets, ok := z.years[w.Year()]
	if !ok {
		var err error
		if onsets, err = z.onsets(w.Year()); err != nil {
			return 0, err
		}
		z.years[w.Year()] = onsets
	}
	// Before every onset the zone is at the earliest observance's offset before its change.
	off := z.obs[0].from
	for _, o := range onsets {
		if o.at.After(w) {
			break
		}
		off = o.offset
	}
	return off, nil
}

// onsets are the changes in year y and the last one before it, of every observance, sorted.
func (z *vzone) onsets(y int) ([]onset, error) {
	soy := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	eoy := soy.AddDate(1, 0, 0).Add(-time.Second)
	var out []onset
	for _, o := range z.obs {
		var last *onset
		keep := func(t time.Time) {
			switch {
			case t.After(eoy):
			case !t.Before(soy):
				out = append(out, onset{t, o.to})
			case last == nil || t.After(last.at):
				last = &onset{t, o.to}
			}
		}
		keep(o.start)
		for _, t := range o.rdates {
			keep(t)
		}
		if o.rule != nil {
			opt := *o.rule
			// An observance whose rule ended long ago still has a last onset.
			lo := soy.AddDate(-1, 0, 0)
			if !opt.Until.IsZero() && opt.Until.Before(lo) {
				lo = opt.Until.AddDate(-2, 0, 0)
			}
			if err := z.f.expand(&opt, lo, eoy, func(t time.Time) error {
				if z.f.instances++; z.f.instances > maxInstances {
					return fmt.Errorf("recurs more than %d times across the feed", maxInstances)
				}
				keep(t)
				return nil
			}); err != nil {
				return nil, err
			}
		}
		if last != nil {
			out = append(out, *last)
		}
	}
	slices.SortFunc(out, func(a, b onset) int { return a.at.Compare(b.at) })
	return out, nil
}

func (z *vzone) instant(w time.Time) (time.Time, error) {
	off, err := z.offset(w)
	return w.Add(-off), err
}

func (z *vzone) wall(t time.Time) (time.Time, error) {
	off, err := z.offset(t)
	return t.Add(off), err
}

// parseUTCOffset reads a UTC offset: "+0800", "-0500", "+053000".
func parseUTCOffset(v string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a UTC offset such as +0800", clipText(v))
	if len(v) != 5 && len(v) != 7 || v[0] != '+' && v[0] != '-' {
		return 0, bad
	}
	var parts [3]int
	for i := 0; 1+2*i < len(v); i++ {
		n, err := strconv.Atoi(v[1+2*i : 3+2*i])
		if err != nil || n < 0 || n > 59 {
			return 0, bad
		}
		parts[i] = n
	}
	d := time.Duration(parts[0])*time.Hour + time.Duration(parts[1])*time.Minute + time.Duration(parts[2])*time.Second
	if d > 24*time.Hour {
		return 0, bad
	}
	if v[0] == '-' {
		d = -d
	}
	return d, nil
}

// parseICSDuration reads a duration (RFC 5545 §3.3.6) as nominal days and exact seconds:
// "P2D", "P1W", "PT4H30M", "P1DT12H". Negative durations are refused: no event ends before it
// starts.
func parseICSDuration(v string) (days, secs int64, err error) {
	bad := fmt.Errorf("%q is not a duration such as P1D or PT4H", clipText(v))
	s := strings.TrimPrefix(strings.ToUpper(v), "+")
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, 0, bad
	}
	s = s[1:]
	inTime, seen := false, false
	for len(s) > 0 {
		if s[0] == 'T' && !inTime {
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		// Seven digits exceed any bound checked afterwards, without overflowing.
		if i == 0 || i > 7 || i == len(s) {
			return 0, 0, bad
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		switch unit := s[i]; {
		case unit == 'W' && !inTime:
			days += 7 * n
		case unit == 'D' && !inTime:
			days += n
		case unit == 'H' && inTime:
			secs += 3600 * n
		case unit == 'M' && inTime:
			secs += 60 * n
		case unit == 'S' && inTime:
			secs += n
		default:
			return 0, 0, bad
		}
		seen, s = true, s[i+1:]
	}
	if !seen {
		return 0, 0, bad
	}
	return days, secs, nil
}

// value is the value of a component's first property of that name, or "".
func propValue(cb *ics.ComponentBase, name ics.ComponentProperty) string {
	if p := cb.GetProperty(name); p != nil {
		return p.Value
	}
	return ""
}

func paramValue(params map[string][]string, name string) string {
	if v := params[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// eventName names an event for an administrator: by UID, which every exporter writes, else by
// SUMMARY, else by position.
func eventName(e *ics.VEvent, i int) string {
	if v := propValue(&e.ComponentBase, ics.ComponentPropertyUniqueId); v != "" {
		return fmt.Sprintf("event %q", clipText(v))
	}
	if v := propValue(&e.ComponentBase, ics.ComponentPropertySummary); v != "" {
		return fmt.Sprintf("event %q", clipText(v))
	}
	return fmt.Sprintf("event %d", i+1)
}

// clip shortens what a feed wrote for an error message.
func clipText(s string) string {
	n := 80
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

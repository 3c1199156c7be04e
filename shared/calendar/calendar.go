// Package calendar says when a team works — weekly hours in a time zone, with breaks and
// holidays — and counts in business time: when N business hours after an instant are up, and how
// much business time lies between two instants. Auto-reply promises and SLA deadlines rest on it.
package calendar

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// Bounds on what an administrator may write. They keep a day's periods in a fixed-size buffer
// and put a ceiling on how many days Add and Between must walk one at a time.
const (
	MaxRangesPerDay = 8
	MaxHolidays     = 1000
)

// Calendar is when a team works, as an administrator writes it.
type Calendar struct {
	// TimeZone is the IANA zone the hours and holidays are in, such as "Asia/Kuala_Lumpur".
	TimeZone string `json:"timeZone"`
	// Hours holds each working day's time ranges, "09:00-12:30", under "mon" … "sun". A day
	// that is missing or has no ranges is not worked. "24:00" may end a range.
	Hours map[string][]string `json:"hours"`
	// Holidays are whole local dates off, "2026-12-25".
	Holidays []string `json:"holidays,omitempty"`
}

// Default is the calendar of a team that has not said otherwise.
func Default() Calendar {
	weekday := []string{"09:00-17:00"}
	return Calendar{
		TimeZone: "UTC",
		Hours:    map[string][]string{"mon": weekday, "tue": weekday, "wed": weekday, "thu": weekday, "fri": weekday},
	}
}

// Compiled is a validated calendar ready for arithmetic. It is immutable and safe for
// concurrent use.
type Compiled struct {
	norm Calendar
	loc  *time.Location
	// days holds each weekday's ranges, indexed by time.Weekday, sorted and merged.
	days [7][]span
	// holidays are day numbers (see dayNumber), sorted and unique.
	holidays []int64
	// weekly is the wall-clock length of a week's ranges: the business time of a week with no
	// holiday and no clock change.
	weekly  time.Duration
	summary string
}

// span is one working range of a day as offsets from local midnight.
type span struct{ start, end time.Duration }

// dayKeys are the keys of Calendar.Hours, indexed by time.Weekday.
var dayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Compile checks c and prepares it for arithmetic. Errors are fault.Invalid and name the field
// at fault relative to the calendar: "timeZone", "hours.mon[1]", "holidays[2]".
func (c Calendar) Compile() (*Compiled, error) {
	const op = "calendar.Compile"
	out := &Compiled{norm: Calendar{TimeZone: c.TimeZone}}

	if c.TimeZone == "" {
		return nil, fault.InvalidField(op, "timeZone", "is required: an IANA time zone such as Europe/London")
	}
	// "Local" is the machine's zone: a calendar must mean the same on every machine.
	loc, err := LoadZone(c.TimeZone)
	if err != nil || c.TimeZone == "Local" {
		return nil, fault.InvalidField(op, "timeZone", "%q is not an IANA time zone", c.TimeZone)
	}
	out.loc = loc

	// Unknown keys first, in sorted order, so the same input always reports the same field.
	keys := make([]string, 0, len(c.Hours))
	for k := range c.Hours {
		if !slices.Contains(dayKeys[:], k) {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		return nil, fault.InvalidField(op, "hours."+keys[0], "%q is not a day: use mon, tue, wed, thu, fri, sat or sun", keys[0])
	}
	// Monday first, as administrators read a week.
	for i := range 7 {
		wd := time.Weekday((i + 1) % 7)
		spans, err := parseDay(op, dayKeys[wd], c.Hours[dayKeys[wd]])
		if err != nil {
			return nil, err
		}
		out.days[wd] = spans
		for _, s := range spans {
			out.weekly += s.end - s.start
		}
		if len(spans) > 0 {
			if out.norm.Hours == nil {
				out.norm.Hours = make(map[string][]string)
			}
			out.norm.Hours[dayKeys[wd]] = formatSpans(spans, "-")
		}
	}
	if out.weekly == 0 {
		return nil, fault.InvalidField(op, "hours", "no working hours in the week: give at least one day a time range such as \"09:00-17:00\"")
	}

	if len(c.Holidays) > MaxHolidays {
		return nil, fault.InvalidField(op, "holidays", "at most %d holidays", MaxHolidays)
	}
	for i, h := range c.Holidays {
		d, err := time.Parse(time.DateOnly, h)
		if err != nil {
			return nil, fault.InvalidField(op, "holidays["+strconv.Itoa(i)+"]", "%q is not a date like \"2026-12-25\"", h)
		}
		out.holidays = append(out.holidays, dayNumber(d.Date()))
	}
	slices.Sort(out.holidays)
	out.holidays = slices.Compact(out.holidays)
	for _, n := range out.holidays {
		out.norm.Holidays = append(out.norm.Holidays, dateOf(n).Format(time.DateOnly))
	}

	out.summary = out.describe()
	return out, nil
}

// zones caches time.LoadLocation, which reads the zone database from disk on every call, while
// calendars, rules and replies load zones for every message. Only valid names are kept, so it
// holds at most the database's few hundred zones.
var zones sync.Map // name → *time.Location

// LoadZone is time.LoadLocation, cached: for everything in Mailroom that reads a zone per message.
func LoadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// parseDay reads one day's ranges, sorted, with touching ranges merged.
func parseDay(op, key string, ranges []string) ([]span, error) {
	if len(ranges) > MaxRangesPerDay {
		return nil, fault.InvalidField(op, "hours."+key, "at most %d time ranges a day", MaxRangesPerDay)
	}
	type indexed struct {
		span
		i int
	}
	parsed := make([]indexed, 0, len(ranges))
	for i, r := range ranges {
		field := "hours." + key + "[" + strconv.Itoa(i) + "]"
		s, ok := parseSpan(r)
		if !ok {
			return nil, fault.InvalidField(op, field, "%q is not a time range like \"09:00-17:00\"", r)
		}
		if s.end <= s.start {
			return nil, fault.InvalidField(op, field, "%q must end after it starts; split a night shift at midnight: \"22:00-24:00\" and \"00:00-06:00\" the next day", r)
		}
		parsed = append(parsed, indexed{s, i})
	}
	slices.SortFunc(parsed, func(a, b indexed) int { return cmp.Compare(a.start, b.start) })

	var out []span
	for j, p := range parsed {
		if j > 0 && p.start < parsed[j-1].end {
			// Name the range written later: the one the administrator most likely just added.
			a, b := parsed[j-1], p
			if a.i > b.i {
				a, b = b, a
			}
			return nil, fault.InvalidField(op, "hours."+key+"["+strconv.Itoa(b.i)+"]", "%q overlaps %q", ranges[b.i], ranges[a.i])
		}
		if n := len(out); n > 0 && out[n-1].end == p.start {
			out[n-1].end = p.end
			continue
		}
		out = append(out, p.span)
	}
	return out, nil
}

// parseSpan reads "HH:MM-HH:MM"; an en dash may stand for the hyphen, as word processors
// replace one with the other.
func parseSpan(s string) (span, bool) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		from, to, ok = strings.Cut(s, "–")
	}
	if !ok {
		return span{}, false
	}
	start, ok1 := parseClock(strings.TrimSpace(from))
	end, ok2 := parseClock(strings.TrimSpace(to))
	return span{start, end}, ok1 && ok2
}

// parseClock reads a 24-hour "HH:MM" as the time after midnight; "24:00" is midnight at the end
// of the day.
func parseClock(s string) (time.Duration, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.ParseUint(s[:2], 10, 8)
	m, err2 := strconv.ParseUint(s[3:], 10, 8)
	if err1 != nil || err2 != nil || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, true
}

func formatSpans(spans []span, dash string) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = formatClock(s.start) + dash + formatClock(s.end)
	}
	return out
}

func formatClock(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	return string([]byte{byte('0' + h/10), byte('0' + h%10), ':', byte('0' + m/10), byte('0' + m%10)})
}

// Location is the calendar's time zone.
func (c *Compiled) Location() *time.Location { return c.loc }

// Calendar is the calendar in its normal form: ranges sorted and merged, closed days left out,
// holidays sorted and unique. Compiling it again gives the same calendar.
func (c *Compiled) Calendar() Calendar {
	out := Calendar{TimeZone: c.norm.TimeZone, Holidays: slices.Clone(c.norm.Holidays)}
	if c.norm.Hours != nil {
		out.Hours = make(map[string][]string, len(c.norm.Hours))
		for k, v := range c.norm.Hours {
			out.Hours[k] = slices.Clone(v)
		}
	}
	return out
}

// String summarises the hours for people, as auto-replies quote them:
// "Mon–Thu 09:00–18:00, Fri 09:00–12:00 (UTC)". Holidays are left out.
func (c *Compiled) String() string { return c.summary }

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// describe groups consecutive days with the same hours, Monday first; closed days are left out.
func (c *Compiled) describe() string {
	var b strings.Builder
	for i := 0; i < 7; {
		spans := c.days[(i+1)%7]
		j := i + 1
		for j < 7 && slices.Equal(c.days[(j+1)%7], spans) {
			j++
		}
		if len(spans) > 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(dayNames[(i+1)%7])
			if j-1 > i {
				b.WriteString("–" + dayNames[j%7])
			}
			b.WriteString(" " + strings.Join(formatSpans(spans, "–"), ", "))
		}
		i = j
	}
	b.WriteString(" (" + c.norm.TimeZone + ")")
	return b.String()
}

package calendar

import (
	"bytes"
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/teambition/rrule-go"

	"github.com/mailroom/mailroom/shared/fault"
)

// vcal wraps content lines in a VCALENDAR, with CRLF as RFC 5545 wants.
func vcal(lines ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Mailroom//test//EN\r\n" + strings.Join(lines, "\r\n") + "\r\nEND:VCALENDAR\r\n"
}

// vevent is one VEVENT with a UID.
func vevent(uid string, lines ...string) string {
	return strings.Join(append(append([]string{"BEGIN:VEVENT", "UID:" + uid}, lines...), "END:VEVENT"), "\r\n")
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func mustDate(t testing.TB, s string) time.Time {
	t.Helper()
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readFeed(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestHolidaysFeeds(t *testing.T) {
	malaysia := []string{
		"2026-01-01", "2026-02-01", "2026-02-17", "2026-02-18", "2026-03-07", "2026-03-20", "2026-03-21",
		"2026-05-01", "2026-05-27", "2026-05-31", "2026-06-01", "2026-06-17", "2026-08-25", "2026-08-31",
		"2026-09-16", "2026-11-08", "2026-11-09", "2026-12-25",
		"2027-01-01", "2027-02-06", "2027-02-07", "2027-02-08", "2027-03-10", "2027-03-11", "2027-05-01",
		"2027-05-17", "2027-05-20", "2027-06-06", "2027-06-07", "2027-08-15", "2027-08-31", "2027-09-16",
		"2027-10-28", "2027-12-25",
	}
	singapore := []string{
		"2026-01-01", "2026-02-17", "2026-02-18", "2026-03-21", "2026-04-03", "2026-05-01", "2026-05-27",
		"2026-06-01", "2026-08-10", "2026-11-09", "2026-12-25",
	}
	uk := []string{
		"2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
	}
	tests := []struct {
		name, file, zone, from, to string
		want                       []string
	}{
		// Google: all-day events, two days of Hari Raya Aidilfitri in one event, Thaipusam and
		// Federal Territory Day on one date, every holiday TRANSP:TRANSPARENT.
		{"google malaysia", "google-malaysia.ics", "Asia/Kuala_Lumpur", "2026-01-01", "2027-12-31", malaysia},
		{"google one year", "google-malaysia.ics", "Asia/Kuala_Lumpur", "2026-01-01", "2026-12-31", malaysia[:18]},
		// All-day dates are the same dates in every zone.
		{"google in new york", "google-malaysia.ics", "America/New_York", "2026-01-01", "2027-12-31", malaysia},
		{"google range cuts an event", "google-malaysia.ics", "Asia/Kuala_Lumpur", "2026-03-21", "2026-03-21", []string{"2026-03-21"}},
		{"google range before the feed", "google-malaysia.ics", "Asia/Kuala_Lumpur", "2020-01-01", "2025-12-31", nil},
		// Outlook: timed midnight-to-midnight events in a Windows zone defined by a VTIMEZONE, and
		// one all-day event.
		{"outlook singapore", "outlook-singapore.ics", "Asia/Singapore", "2026-01-01", "2026-12-31", singapore},
		{"outlook singapore from kuala lumpur", "outlook-singapore.ics", "Asia/Kuala_Lumpur", "2026-01-01", "2026-12-31", singapore},
		// Seen from London, a Singapore day off straddles two London dates and takes both.
		{"outlook singapore from london", "outlook-singapore.ics", "Europe/London", "2026-08-01", "2026-08-31", []string{"2026-08-09", "2026-08-10"}},
		// The VTIMEZONE's summer time rule puts the August bank holiday at 00:00 BST, not GMT.
		{"outlook uk", "outlook-uk.ics", "Europe/London", "2026-01-01", "2026-12-31", uk},
		{"outlook uk from utc", "outlook-uk.ics", "UTC", "2026-08-01", "2026-12-31", []string{"2026-08-30", "2026-08-31", "2026-12-25", "2026-12-28"}},
		// Apple: yearly rules since 2015 with an EXDATE, COUNT, UNTIL with DURATION, a moved
		// instance, RDATE, a cancelled event; CRLF and a line folded inside RRULE.
		{"recurring", "recurring.ics", "Asia/Kuala_Lumpur", "2026-01-01", "2027-12-31", []string{
			"2026-03-06", "2026-03-27", "2026-04-03", "2026-04-10", "2026-06-15", "2026-12-25",
			"2026-12-29", "2026-12-30", "2026-12-31", "2027-06-14", "2027-12-24", "2027-12-25",
		}},
		{"recurring far ahead", "recurring.ics", "Asia/Kuala_Lumpur", "2100-01-01", "2100-12-31", []string{"2100-06-14", "2100-12-24", "2100-12-25"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readFeed(t, tt.file)
			if !bytes.Contains(data, []byte("\r\n")) {
				t.Fatalf("testdata/%s lost its CRLF line endings; check git's autocrlf", tt.file)
			}
			loc := mustZone(t, tt.zone)
			got, err := Holidays(bytes.NewReader(data), loc, mustDate(t, tt.from), mustDate(t, tt.to))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Holidays:\n got %q\nwant %q", got, tt.want)
			}
			// What Holidays returns is what a calendar takes.
			c := mustCompile(t, Calendar{TimeZone: tt.zone, Hours: weekdays("09:00-17:00"), Holidays: got})
			if h := c.Calendar().Holidays; !slices.Equal(h, got) {
				t.Errorf("Compile changed the holidays: %q", h)
			}
		})
	}
}

func TestHolidaysEvents(t *testing.T) {
	const kl = "Asia/Kuala_Lumpur"
	tests := []struct {
		name     string
		feed     string
		zone     string // the calendar's; Kuala Lumpur when empty
		from, to string // 2026 when empty
		want     []string
	}{
		{name: "all-day without DTEND is one day", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225")),
			want: []string{"2026-12-25"}},
		{name: "DTEND is exclusive", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261224", "DTEND;VALUE=DATE:20261227")),
			want: []string{"2026-12-24", "2026-12-25", "2026-12-26"}},
		{name: "DTEND equal to DTSTART is one day", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "DTEND;VALUE=DATE:20261225")),
			want: []string{"2026-12-25"}},
		{name: "date without VALUE=DATE", feed: vcal(vevent("a", "DTSTART:20261225", "DTEND:20261226")),
			want: []string{"2026-12-25"}},
		{name: "DURATION in days", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20260320", "DURATION:P2D")),
			want: []string{"2026-03-20", "2026-03-21"}},
		{name: "DURATION in weeks", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261221", "DURATION:P1W")),
			want: []string{"2026-12-21", "2026-12-22", "2026-12-23", "2026-12-24", "2026-12-25", "2026-12-26", "2026-12-27"}},
		{name: "DURATION in hours on a date rounds up", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261224", "DURATION:PT36H")),
			want: []string{"2026-12-24", "2026-12-25"}},
		{name: "a few hours take the day", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20261224T140000", "DTEND;TZID=Asia/Kuala_Lumpur:20261224T180000")),
			want: []string{"2026-12-24"}},
		{name: "UTC times across midnight in the calendar's zone", feed: vcal(vevent("a", "DTSTART:20261224T150000Z", "DTEND:20261224T170000Z")),
			want: []string{"2026-12-24", "2026-12-25"}},
		{name: "ending at midnight leaves the next day", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20261225T000000", "DTEND;TZID=Asia/Kuala_Lumpur:20261226T000000")),
			want: []string{"2026-12-25"}},
		{name: "floating time is in the calendar's zone", zone: "Europe/London", feed: vcal(vevent("a", "DTSTART:20261225T000000", "DTEND:20261226T000000")),
			want: []string{"2026-12-25"}},
		{name: "timed without end takes its date", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20261225T100000")),
			want: []string{"2026-12-25"}},
		{name: "quoted TZID", feed: vcal(vevent("a", `DTSTART;TZID="Europe/London":20261225T000000`, `DTEND;TZID="Europe/London":20261226T000000`)), zone: "Europe/London",
			want: []string{"2026-12-25"}},
		// 29 March 2026 has 23 hours in London: P1D ends at midnight, 24 hours would not.
		{name: "DURATION days are nominal across a clock change", zone: "Europe/London",
			feed: vcal(vevent("a", "DTSTART;TZID=Europe/London:20260329T000000", "DURATION:P1D")),
			want: []string{"2026-03-29"}},
		{name: "DTEND gives every instance the same exact length", zone: "Europe/London",
			feed: vcal(vevent("a", "DTSTART;TZID=Europe/London:20260328T000000", "DTEND;TZID=Europe/London:20260329T000000", "RRULE:FREQ=DAILY;COUNT=2")),
			want: []string{"2026-03-28", "2026-03-29", "2026-03-30"}},
		{name: "range clips an event", to: "2026-12-31", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261230", "DTEND;VALUE=DATE:20270103")),
			want: []string{"2026-12-30", "2026-12-31"}},
		{name: "TRANSPARENT is kept, CANCELLED skipped", feed: vcal(
			vevent("a", "DTSTART;VALUE=DATE:20261225", "TRANSP:TRANSPARENT"),
			vevent("b", "DTSTART;VALUE=DATE:20261226", "STATUS:CANCELLED"),
			vevent("c", "DTSTART;VALUE=DATE:20261227", "STATUS:cancelled"),
			vevent("d", "DTSTART;VALUE=DATE:20261228", "STATUS:TENTATIVE")),
			want: []string{"2026-12-25", "2026-12-28"}},
		{name: "sorted and unique", feed: vcal(
			vevent("a", "DTSTART;VALUE=DATE:20261226"),
			vevent("b", "DTSTART;VALUE=DATE:20261224", "DTEND;VALUE=DATE:20261227"),
			vevent("c", "DTSTART;VALUE=DATE:20260101"),
			vevent("d", "DTSTART;VALUE=DATE:20261225")),
			want: []string{"2026-01-01", "2026-12-24", "2026-12-25", "2026-12-26"}},
		{name: "no event in the range", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20251225")), want: nil},
		{name: "all events cancelled", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "STATUS:CANCELLED")), want: nil},

		// Recurrence.
		{name: "yearly since 1990 is expanded only near the range", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:19901225", "RRULE:FREQ=YEARLY")),
			want: []string{"2026-12-25"}},
		{name: "yearly on 29 February", from: "2026-01-01", to: "2032-12-31",
			feed: vcal(vevent("a", "DTSTART;VALUE=DATE:19960229", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29")),
			want: []string{"2028-02-29", "2032-02-29"}},
		{name: "COUNT counts from DTSTART", from: "2026-01-01", to: "2030-12-31",
			feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20201225", "RRULE:FREQ=YEARLY;COUNT=8")),
			want: []string{"2026-12-25", "2027-12-25"}},
		{name: "UNTIL is inclusive", from: "2026-01-01", to: "2030-12-31",
			feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20201225", "RRULE:FREQ=YEARLY;UNTIL=20271225")),
			want: []string{"2026-12-25", "2027-12-25"}},
		// 09:00 in Kuala Lumpur is 01:00 UTC.
		{name: "UNTIL in UTC for a zoned start", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20241225T090000", "RRULE:FREQ=YEARLY;UNTIL=20261225T010000Z")),
			want: []string{"2026-12-25"}},
		{name: "UNTIL in UTC a second early", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20241225T090000", "RRULE:FREQ=YEARLY;UNTIL=20261225T005959Z")),
			want: nil},
		{name: "first Monday of the month", from: "2026-01-01", to: "2026-04-30",
			feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20000103", "RRULE:FREQ=MONTHLY;BYDAY=1MO")),
			want: []string{"2026-01-05", "2026-02-02", "2026-03-02", "2026-04-06"}},
		{name: "lower case rule with X- part and a trailing semicolon", from: "2026-01-01", to: "2026-04-30",
			feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20000103", "RRULE:freq=monthly;X-NAME=x;byday=1mo;")),
			want: []string{"2026-01-05", "2026-02-02", "2026-03-02", "2026-04-06"}},
		{name: "daily with EXDATE list", from: "2026-12-21", to: "2026-12-31",
			feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261221", "RRULE:FREQ=DAILY;COUNT=7", "EXDATE;VALUE=DATE:20261223,20261225", "EXDATE;VALUE=DATE:20261226")),
			want: []string{"2026-12-21", "2026-12-22", "2026-12-24", "2026-12-27"}},
		{name: "EXDATE takes out DTSTART itself", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20251225", "RRULE:FREQ=YEARLY;COUNT=2", "EXDATE;VALUE=DATE:20251225")),
			want: []string{"2026-12-25"}},
		{name: "EXDATE by instant for a timed event", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20251225T090000", "DTEND;TZID=Asia/Kuala_Lumpur:20251225T120000",
			"RRULE:FREQ=YEARLY;COUNT=3", "EXDATE:20261225T010000Z")),
			want: nil},
		{name: "EXDATE by date for a timed event", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20251225T090000", "RRULE:FREQ=YEARLY;COUNT=3", "EXDATE;VALUE=DATE:20261225")),
			want: nil},
		{name: "EXDATE at another time leaves the instance", feed: vcal(vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20251225T090000", "RRULE:FREQ=YEARLY;COUNT=3", "EXDATE;TZID=Asia/Kuala_Lumpur:20261225T100000")),
			want: []string{"2026-12-25"}},
		{name: "RDATE dates and times", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20260101", "RDATE;VALUE=DATE:20260201,20260301", "RDATE:20260401T100000Z")),
			want: []string{"2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"}},
		{name: "RDATE periods", feed: vcal(vevent("a", "DTSTART:20260101T000000Z", "RDATE;VALUE=PERIOD:20260301T000000Z/20260302T180000Z,20260401T000000Z/P2D")),
			want: []string{"2026-01-01", "2026-03-01", "2026-03-02", "2026-03-03", "2026-04-01", "2026-04-02", "2026-04-03"}},
		{name: "RECURRENCE-ID moves an instance", feed: vcal(
			vevent("a", "DTSTART;VALUE=DATE:20241225", "RRULE:FREQ=YEARLY"),
			vevent("a", "RECURRENCE-ID;VALUE=DATE:20261225", "DTSTART;VALUE=DATE:20261228")),
			want: []string{"2026-12-28"}},
		{name: "RECURRENCE-ID cancels an instance", feed: vcal(
			vevent("a", "DTSTART;TZID=Asia/Kuala_Lumpur:20250614T090000", "DTEND;TZID=Asia/Kuala_Lumpur:20250614T130000", "RRULE:FREQ=YEARLY"),
			vevent("a", "RECURRENCE-ID;TZID=Asia/Kuala_Lumpur:20260614T090000", "DTSTART;TZID=Asia/Kuala_Lumpur:20260614T090000", "STATUS:CANCELLED")),
			from: "2026-01-01", to: "2027-12-31", want: []string{"2027-06-14"}},
		{name: "RECURRENCE-ID of another UID changes nothing", feed: vcal(
			vevent("a", "DTSTART;VALUE=DATE:20241225", "RRULE:FREQ=YEARLY"),
			vevent("b", "RECURRENCE-ID;VALUE=DATE:20261225", "DTSTART;VALUE=DATE:20261228")),
			want: []string{"2026-12-25", "2026-12-28"}},
		{name: "weekly in a VTIMEZONE with summer time", zone: "Europe/London", from: "2026-03-20", to: "2026-04-10",
			feed: vcal("BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time",
				"BEGIN:STANDARD", "DTSTART:16011028T030000", "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "END:STANDARD",
				"BEGIN:DAYLIGHT", "DTSTART:16010325T020000", "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "END:DAYLIGHT",
				"END:VTIMEZONE",
				// 00:30 in Berlin is 23:30 the day before in London, in winter and in summer.
				vevent("a", "DTSTART;TZID=W. Europe Standard Time:20260321T003000", "DURATION:PT20M", "RRULE:FREQ=WEEKLY;COUNT=3")),
			want: []string{"2026-03-20", "2026-03-27", "2026-04-03"}},
		{name: "VTIMEZONE with RDATE", zone: "UTC",
			feed: vcal("BEGIN:VTIMEZONE", "TZID:Custom",
				"BEGIN:STANDARD", "DTSTART:20000101T000000", "TZOFFSETFROM:+0000", "TZOFFSETTO:+0000", "END:STANDARD",
				"BEGIN:DAYLIGHT", "DTSTART:20260601T000000", "RDATE:20260601T000000", "TZOFFSETFROM:+0000", "TZOFFSETTO:+0300", "END:DAYLIGHT",
				"END:VTIMEZONE",
				vevent("a", "DTSTART;TZID=Custom:20260101T010000"),
				vevent("b", "DTSTART;TZID=Custom:20260701T010000")),
			want: []string{"2026-01-01", "2026-06-30"}},

		// Shapes of files.
		{name: "byte-order mark", feed: "\uFEFF" + vcal(vevent("a", "DTSTART;VALUE=DATE:20261225")), want: []string{"2026-12-25"}},
		{name: "LF line endings", feed: strings.ReplaceAll(vcal(vevent("a", "DTSTART;VALUE=DATE:20261225")), "\r\n", "\n"), want: []string{"2026-12-25"}},
		{name: "folded inside a name and a parameter", feed: vcal(vevent("a", "DTST\r\n ART;VAL\r\n\tUE=DATE:2026\r\n 1225")), want: []string{"2026-12-25"}},
		{name: "properties between components", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225"), "X-ORPHAN:1", vevent("b", "DTSTART;VALUE=DATE:20261226")),
			want: []string{"2026-12-25", "2026-12-26"}},
		{name: "other components are ignored", feed: vcal("BEGIN:VTODO", "UID:t", "DTSTART;VALUE=DATE:20261201", "END:VTODO", vevent("a", "DTSTART;VALUE=DATE:20261225")),
			want: []string{"2026-12-25"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, cmp.Or(tt.zone, kl))
			from, to := mustDate(t, cmp.Or(tt.from, "2026-01-01")), mustDate(t, cmp.Or(tt.to, "2026-12-31"))
			got, err := Holidays(strings.NewReader(tt.feed), loc, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Holidays:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestHolidaysErrors(t *testing.T) {
	daily := vevent("a", "DTSTART;VALUE=DATE:20260101", "RRULE:FREQ=DAILY")
	tests := []struct {
		name     string
		feed     string
		from, to string // 2026 when empty
		want     string // in the message
	}{
		{name: "empty", feed: "", want: "not an iCalendar feed: it is empty"},
		{name: "text", feed: "hello world\n", want: "must begin with BEGIN:VCALENDAR"},
		{name: "HTML", feed: "<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", want: "must begin with BEGIN:VCALENDAR"},
		{name: "JSON", feed: `{"holidays": ["2026-12-25"]}`, want: "must begin with BEGIN:VCALENDAR"},
		{name: "vCard", feed: "BEGIN:VCARD\r\nVERSION:4.0\r\nEND:VCARD\r\n", want: `must begin with BEGIN:VCALENDAR, not "BEGIN:VCARD"`},
		{name: "no events", feed: vcal("BEGIN:VTODO", "UID:t", "END:VTODO"), want: "no events (VEVENT)"},
		{name: "only a calendar", feed: vcal(), want: "no events (VEVENT)"},
		{name: "unterminated", feed: "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\n", want: "not a valid iCalendar feed"},
		{name: "mismatched END", feed: vcal("BEGIN:VEVENT", "DTSTART;VALUE=DATE:20261225", "END:VTODO"), want: "not a valid iCalendar feed"},
		{name: "line without a colon", feed: vcal(vevent("a", "DTSTART")), want: `line 6: "DTSTART" is not a content line`},
		{name: "no DTSTART", feed: vcal(vevent("xmas-2026", "SUMMARY:Christmas")), want: `event "xmas-2026": no DTSTART`},
		{name: "named by SUMMARY without UID", feed: vcal("BEGIN:VEVENT", "SUMMARY:Christmas", "DTSTART:2026-12-25", "END:VEVENT"),
			want: `event "Christmas": DTSTART: "2026-12-25" is not a date`},
		{name: "named by position", feed: vcal(vevent("a", "DTSTART:20261225"), "BEGIN:VEVENT", "DTSTART:x", "END:VEVENT"), want: `event 2: DTSTART: "x" is not a date`},
		{name: "month 13", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261325")), want: `DTSTART: "20261325" is not a date`},
		{name: "VALUE=DATE with a time", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225T000000")), want: "is not a date, as VALUE=DATE says"},
		{name: "unknown VALUE", feed: vcal(vevent("a", "DTSTART;VALUE=TEXT:20261225")), want: "VALUE=TEXT is not a date"},
		{name: "DTEND before DTSTART", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "DTEND;VALUE=DATE:20261224")), want: "DTEND 20261224 is before DTSTART 20261225"},
		{name: "timed DTEND before DTSTART", feed: vcal(vevent("a", "DTSTART:20261225T100000Z", "DTEND:20261225T090000Z")), want: "is before DTSTART"},
		{name: "bad DTEND", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "DTEND:tomorrow")), want: `DTEND: "tomorrow" is not a date`},
		{name: "bad DURATION", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "DURATION:2D")), want: `DURATION: "2D" is not a duration`},
		{name: "negative DURATION", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "DURATION:-P1D")), want: "is not a duration"},
		{name: "DURATION without number", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "DURATION:PTD")), want: "is not a duration"},
		{name: "event of a year and more", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20260101", "DURATION:P400D")), want: "lasts more than 366 days"},
		{name: "timed event of years", feed: vcal(vevent("a", "DTSTART:20200101T000000Z", "DTEND:20300101T000000Z")), want: "DTEND 20300101T000000Z makes it last more than 366 days"},
		{name: "all-day event of years", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20200101", "DTEND;VALUE=DATE:20300101")), want: "DTEND 20300101 makes it last more than 366 days"},
		{name: "unknown TZID", feed: vcal(vevent("a", "DTSTART;TZID=Mars/Olympus_Mons:20261225T000000")), want: `TZID "Mars/Olympus_Mons" is neither an IANA time zone nor a VTIMEZONE`},
		{name: "TZID Local", feed: vcal(vevent("a", "DTSTART;TZID=Local:20261225T000000")), want: `TZID "Local" is neither`},
		{name: "VTIMEZONE without observances", feed: vcal("BEGIN:VTIMEZONE", "TZID:Nowhere", "END:VTIMEZONE", vevent("a", "DTSTART;TZID=Nowhere:20261225T000000")),
			want: `VTIMEZONE "Nowhere": no STANDARD or DAYLIGHT`},
		{name: "bad TZOFFSETTO", feed: vcal("BEGIN:VTIMEZONE", "TZID:Odd", "BEGIN:STANDARD", "DTSTART:16010101T000000", "TZOFFSETFROM:+0800", "TZOFFSETTO:8", "END:STANDARD", "END:VTIMEZONE",
			vevent("a", "DTSTART;TZID=Odd:20261225T000000")), want: `TZOFFSETTO: "8" is not a UTC offset`},
		{name: "bad RRULE", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "RRULE:FREQ=SOMETIMES")), want: `RRULE: "FREQ=SOMETIMES"`},
		{name: "RRULE out of bounds", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "RRULE:FREQ=YEARLY;BYMONTH=13")), want: "RRULE: bymonth must be between 1 and 12"},
		{name: "hourly RRULE", feed: vcal(vevent("a", "DTSTART:20261225T000000Z", "RRULE:FREQ=HOURLY")), want: "repeats within a day"},
		{name: "BYEASTER", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20260405", "RRULE:FREQ=YEARLY;BYEASTER=1000")), want: "BYEASTER is not part of RFC 5545"},
		{name: "bad EXDATE", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "RRULE:FREQ=YEARLY", "EXDATE:2026")), want: `EXDATE: "2026" is not a date`},
		{name: "bad RDATE", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "RDATE:20261232")), want: `RDATE: "20261232" is not a date`},
		{name: "bad PERIOD", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "RDATE;VALUE=PERIOD:20261226T000000Z")), want: "is not a period start/end"},
		{name: "backwards PERIOD", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20261225", "RDATE;VALUE=PERIOD:20261226T000000Z/20261225T000000Z")), want: "ends before it starts"},
		{name: "bad RECURRENCE-ID", feed: vcal(vevent("a", "RECURRENCE-ID:soon", "DTSTART;VALUE=DATE:20261225")), want: `event "a": RECURRENCE-ID: "soon" is not a date`},
		{name: "too many parameters", feed: vcal(vevent("a", "DTSTART"+strings.Repeat(";X-A=1", 33)+":20261225")), want: "line 6: more than 32 parameters"},
		{name: "nested too deep", feed: vcal(strings.Repeat("BEGIN:X\r\n", 8) + strings.Repeat("END:X\r\n", 8) + vevent("a", "DTSTART:20261225")), want: "line 11: components nested more than 8 deep"},
		// Daily without end: one date a day, more than a calendar holds over three years.
		{name: "too many dates", feed: vcal(daily), to: "2028-12-31", want: "gives 1096 dates from 2026-01-01 to 2028-12-31, more than the 1000"},
		{name: "too many instances", feed: vcal(vevent("a", "DTSTART;VALUE=DATE:20260101",
			"RRULE:FREQ=DAILY;BYHOUR="+numberList(0, 23)+";BYMINUTE="+numberList(0, 59))), want: "recurs more than 100000 times"},
		{name: "too long a walk", feed: vcal(slices.Repeat([]string{vevent("a", "DTSTART;VALUE=DATE:19000101", "RRULE:FREQ=DAILY;COUNT=5;BYMONTH=2;BYMONTHDAY=30")}, 40)...),
			want: "recurrence rules take too long to expand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := mustDate(t, cmp.Or(tt.from, "2026-01-01")), mustDate(t, cmp.Or(tt.to, "2026-12-31"))
			got, err := Holidays(strings.NewReader(tt.feed), mustZone(t, "Asia/Kuala_Lumpur"), from, to)
			if err == nil {
				t.Fatalf("Holidays = %q, want an error", got)
			}
			if fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "ics" {
				t.Errorf("error %v: kind %v field %q, want invalid ics", err, fault.KindOf(err), fault.FieldOf(err))
			}
			if msg := fault.MessageOf(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q\nwant it to contain %q", msg, tt.want)
			}
		})
	}
}

func numberList(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, ",")
}

func TestHolidaysBounds(t *testing.T) {
	kl := mustZone(t, "Asia/Kuala_Lumpur")
	jan1 := mustDate(t, "2026-01-01")
	daily := vcal(vevent("a", "DTSTART;VALUE=DATE:20260101", "RRULE:FREQ=DAILY"))

	t.Run("MaxHolidays dates", func(t *testing.T) {
		got, err := Holidays(strings.NewReader(daily), kl, jan1, jan1.AddDate(0, 0, MaxHolidays-1))
		if err != nil || len(got) != MaxHolidays {
			t.Fatalf("got %d dates, %v; want %d", len(got), err, MaxHolidays)
		}
		_, err = Holidays(strings.NewReader(daily), kl, jan1, jan1.AddDate(0, 0, MaxHolidays))
		if !fault.Is(err, fault.Invalid) {
			t.Fatalf("one more: %v, want invalid", err)
		}
	})

	t.Run("MaxFeedBytes", func(t *testing.T) {
		head := vcal(vevent("a", "DTSTART;VALUE=DATE:20261225"))
		// Pad with a folded comment up to the limit exactly, then one byte more.
		pad := func(n int) string {
			var b strings.Builder
			b.WriteString("COMMENT:" + strings.Repeat("x", 70))
			for len(head)+b.Len()+2 < n {
				b.WriteString("\r\n " + strings.Repeat("x", min(73, n-len(head)-b.Len()-5)))
			}
			return strings.Replace(head, "END:VCALENDAR", b.String()+"\r\nEND:VCALENDAR", 1)
		}
		feed := pad(MaxFeedBytes)
		if len(feed) != MaxFeedBytes {
			t.Fatalf("padded to %d bytes, want %d", len(feed), MaxFeedBytes)
		}
		if got, err := Holidays(strings.NewReader(feed), kl, jan1, jan1.AddDate(0, 11, 30)); err != nil || !slices.Equal(got, []string{"2026-12-25"}) {
			t.Fatalf("at the limit: %q, %v", got, err)
		}
		_, err := Holidays(strings.NewReader(feed+"\n"), kl, jan1, jan1.AddDate(0, 11, 30))
		if !fault.Is(err, fault.Invalid) || !strings.Contains(fault.MessageOf(err), "larger than 1024 KiB") {
			t.Fatalf("past the limit: %v", err)
		}
	})

	t.Run("reads no more than the limit", func(t *testing.T) {
		r := &countingReader{}
		_, err := Holidays(r, kl, jan1, jan1)
		if err == nil || r.n > MaxFeedBytes+1<<16 {
			t.Fatalf("read %d bytes of an endless feed, err %v", r.n, err)
		}
	})

	// rrule-go walks a rule that matches nothing to the year 9999, whatever its UNTIL.
	t.Run("rules that match nothing", func(t *testing.T) {
		never := vevent("a", "DTSTART;VALUE=DATE:20000101", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")
		got, err := Holidays(strings.NewReader(vcal(never)), kl, jan1, jan1.AddDate(1, 0, 0))
		if err != nil || len(got) != 0 {
			t.Fatalf("one rule: %q, %v", got, err)
		}
		_, err = Holidays(strings.NewReader(vcal(slices.Repeat([]string{never}, 1000)...)), kl, jan1, jan1.AddDate(1, 0, 0))
		if !fault.Is(err, fault.Invalid) || !strings.Contains(fault.MessageOf(err), "take too long to expand") {
			t.Fatalf("a thousand rules: %v", err)
		}
	})

	t.Run("years 1 to 9999", func(t *testing.T) {
		for _, r := range [][2]time.Time{{time.Date(0, 12, 31, 0, 0, 0, 0, kl), jan1}, {jan1, time.Date(10000, 1, 1, 0, 0, 0, 0, kl)}} {
			if _, err := Holidays(strings.NewReader(daily), kl, r[0], r[1]); !fault.Is(err, fault.Invalid) {
				t.Errorf("from %v to %v: %v, want invalid", r[0], r[1], err)
			}
		}
		got, err := Holidays(strings.NewReader(vcal(vevent("a", "DTSTART;VALUE=DATE:20001231", "RRULE:FREQ=YEARLY"))), kl, time.Date(9999, 1, 1, 0, 0, 0, 0, kl), time.Date(9999, 12, 31, 0, 0, 0, 0, kl))
		if err != nil || !slices.Equal(got, []string{"9999-12-31"}) {
			t.Errorf("in 9999: %q, %v", got, err)
		}
	})

	t.Run("to before from", func(t *testing.T) {
		_, err := Holidays(strings.NewReader(daily), kl, jan1, jan1.AddDate(0, 0, -1))
		if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "to" {
			t.Fatalf("got %v, want invalid to", err)
		}
	})

	t.Run("from and to count by their dates in the zone", func(t *testing.T) {
		// 16:00 UTC on 31 December is already 1 January in Kuala Lumpur.
		at := time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC)
		got, err := Holidays(strings.NewReader(vcal(vevent("a", "DTSTART;VALUE=DATE:20270101"))), kl, at, at)
		if err != nil || !slices.Equal(got, []string{"2027-01-01"}) {
			t.Fatalf("got %q, %v", got, err)
		}
	})

	t.Run("read error", func(t *testing.T) {
		_, err := Holidays(iotest.ErrReader(errors.New("connection reset")), kl, jan1, jan1)
		if !fault.Is(err, fault.Transient) {
			t.Fatalf("got %v, want transient", err)
		}
	})

	t.Run("no zone", func(t *testing.T) {
		_, err := Holidays(strings.NewReader(daily), nil, jan1, jan1)
		if !fault.Is(err, fault.Internal) {
			t.Fatalf("got %v, want internal", err)
		}
	})
}

// countingReader is an endless feed of one property repeated.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	const line = "X-PAD:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
	for i := range p {
		p[i] = line[(r.n+i)%len(line)]
	}
	r.n += len(p)
	return len(p), nil
}

// rruleCases are recurrence rules with a start long before the range, for skipAhead and expand.
var rruleCases = []struct{ rule, start string }{
	{"FREQ=YEARLY", "19901225T000000"},
	{"FREQ=YEARLY;INTERVAL=3", "19911225T000000"},
	{"FREQ=YEARLY", "19960229T000000"},
	{"FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO", "19980105T000000"},
	{"FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH,FR,SA", "19981231T000000"},
	{"FREQ=YEARLY;BYYEARDAY=-1", "19991231T000000"},
	{"FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO", "20000529T000000"},
	{"FREQ=YEARLY;INTERVAL=2;BYMONTH=1,7;BYDAY=1SU;BYSETPOS=-1", "20010107T093000"},
	{"FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=13;BYDAY=FR", "19980313T000000"},
	{"FREQ=MONTHLY", "20000131T000000"},
	{"FREQ=MONTHLY;INTERVAL=5", "20000115T120000"},
	{"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "20000131T000000"},
	{"FREQ=MONTHLY;INTERVAL=7;BYMONTHDAY=-1", "20000229T000000"},
	{"FREQ=WEEKLY;INTERVAL=2", "20000103T000000"},
	{"FREQ=WEEKLY;INTERVAL=3;WKST=SU;BYDAY=SA,SU", "20000101T000000"},
	{"FREQ=WEEKLY;INTERVAL=4;WKST=WE;BYDAY=MO,TU", "20000104T000000"},
	{"FREQ=DAILY;INTERVAL=10", "20000101T000000"},
	{"FREQ=DAILY;INTERVAL=7;BYMONTH=3", "20000301T000000"},
	{"FREQ=DAILY;BYDAY=SA;BYMONTHDAY=13", "20000513T000000"},
	{"FREQ=YEARLY;COUNT=40", "19900704T000000"},
	{"FREQ=WEEKLY;COUNT=3000;BYDAY=MO,FR", "20000103T000000"},
}

// rruleInstances are rrule-go's instances of a rule in [lo, hi], walked from its own start: the
// oracle for skipAhead and expand.
func rruleInstances(t *testing.T, rule, start string, lo, hi time.Time) (*rrule.ROption, []time.Time) {
	t.Helper()
	opt, _, err := ruleOption(rule)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Dtstart, err = time.Parse("20060102T150405", start); err != nil {
		t.Fatal(err)
	}
	o := *opt
	o.Until = hi
	r, err := rrule.NewRRule(o)
	if err != nil {
		t.Fatal(err)
	}
	return opt, r.Between(lo, hi, true)
}

func TestSkipAhead(t *testing.T) {
	lo := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2029, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range rruleCases {
		t.Run(tt.rule+" from "+tt.start, func(t *testing.T) {
			opt, want := rruleInstances(t, tt.rule, tt.start, lo, hi)
			moved := *opt
			skipAhead(&moved, lo)
			switch {
			case moved.Dtstart.After(lo):
				t.Fatalf("start moved past lo to %v", moved.Dtstart)
			case opt.Count > 0 && !moved.Dtstart.Equal(opt.Dtstart):
				t.Fatalf("a rule with COUNT moved to %v", moved.Dtstart)
			// A start on a 29th to 31st cannot move by months or years.
			case opt.Count == 0 && opt.Dtstart.Day() < 29 && !moved.Dtstart.After(opt.Dtstart):
				t.Errorf("start stayed at %v", moved.Dtstart)
			}
			_, got := rruleInstances(t, tt.rule, moved.Dtstart.Format("20060102T150405"), lo, hi)
			if !slices.EqualFunc(got, want, time.Time.Equal) || len(want) == 0 {
				t.Errorf("from %v:\n got %v\nwant %v", moved.Dtstart, got, want)
			}
		})
	}
}

// expand moves a rule ahead and whole 400-year cycles later; its instances must stay rrule-go's.
func TestExpand(t *testing.T) {
	for _, r := range []struct{ lo, hi time.Time }{
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2029, 3, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2099, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2101, 3, 31, 0, 0, 0, 0, time.UTC)},
	} {
		for _, tt := range rruleCases {
			t.Run(tt.rule+" from "+tt.start+" in "+strconv.Itoa(r.lo.Year()), func(t *testing.T) {
				opt, want := rruleInstances(t, tt.rule, tt.start, r.lo, r.hi)
				var got []time.Time
				f := &feed{}
				if err := f.expand(opt, r.lo, r.hi, func(t time.Time) error {
					if !t.Before(r.lo) {
						got = append(got, t)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(got, want, time.Time.Equal) {
					t.Errorf("\n got %v\nwant %v", got, want)
				}
			})
		}
	}
}

func FuzzHolidays(f *testing.F) {
	for _, name := range []string{"google-malaysia.ics", "outlook-singapore.ics", "outlook-uk.ics", "recurring.ics"} {
		f.Add(readFeed(f, name))
	}
	f.Add([]byte(vcal(vevent("a", "DTSTART;VALUE=DATE:20261224", "DURATION:P2D", "RRULE:FREQ=WEEKLY;BYDAY=MO,FR;UNTIL=20270101", "EXDATE;VALUE=DATE:20261225"))))
	f.Add([]byte(vcal(vevent("a", "DTSTART;TZID=Europe/London:20261225T090000", "RDATE;VALUE=PERIOD:20261226T000000Z/PT4H", "RECURRENCE-ID:20261225T090000Z"))))
	f.Add([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;X=\"a:b\";Y=c,d:20261225\r\n folded\r\nEND:VEVENT\r\nEND:VCALENDAR"))
	loc := mustZone(f, "Asia/Kuala_Lumpur")
	from, to := mustDate(f, "2026-01-01"), mustDate(f, "2027-12-31")
	f.Fuzz(func(t *testing.T, feed []byte) {
		start := time.Now()
		got, err := Holidays(bytes.NewReader(feed), loc, from, to)
		// The bounds keep the worst feed near a second; instrumented fuzzing is slower.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
		if err != nil {
			if fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "ics" {
				t.Fatalf("error %v is not invalid ics", err)
			}
			return
		}
		if len(got) > MaxHolidays {
			t.Fatalf("%d dates", len(got))
		}
		for i, d := range got {
			v, err := time.Parse(time.DateOnly, d)
			if err != nil || v.Before(from) || v.After(to) || i > 0 && d <= got[i-1] {
				t.Fatalf("dates %q out of order or range at %d", got, i)
			}
		}
	})
}

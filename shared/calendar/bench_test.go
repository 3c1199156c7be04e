package calendar

import (
	"testing"
	"time"
)

// benchCalendar is a team of the kind acknowledgements and SLAs are written for: a lunch break, a
// short Friday, a zone with clock changes and a year of public holidays.
func benchCalendar(b *testing.B) *Compiled {
	b.Helper()
	hours := []string{"09:00-12:30", "13:30-18:00"}
	return mustCompile(b, Calendar{
		TimeZone: "Europe/London",
		Hours:    map[string][]string{"mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": {"09:00-12:30", "13:30-16:00"}},
		Holidays: []string{
			"2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31",
			"2026-12-25", "2026-12-28", "2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03",
			"2027-05-31", "2027-08-30", "2027-12-27",
		},
	})
}

var benchStart = time.Date(2026, 2, 16, 10, 17, 0, 0, time.UTC)

// BenchmarkAdd is a deadline a year away: 2000 business hours, over two clock changes and every
// holiday.
func BenchmarkAdd(b *testing.B) {
	c := benchCalendar(b)
	for b.Loop() {
		c.Add(benchStart, 2000*time.Hour)
	}
}

// BenchmarkAddShort is an acknowledgement's promise: a day's work.
func BenchmarkAddShort(b *testing.B) {
	c := benchCalendar(b)
	for b.Loop() {
		c.Add(benchStart, 8*time.Hour)
	}
}

// BenchmarkBetweenYear is an SLA report's elapsed business time over a year.
func BenchmarkBetweenYear(b *testing.B) {
	c := benchCalendar(b)
	end := benchStart.AddDate(1, 0, 0)
	for b.Loop() {
		c.Between(benchStart, end)
	}
}

// BenchmarkCompile is the cost of reading a calendar, paid for each message until callers keep
// the compiled form.
func BenchmarkCompile(b *testing.B) {
	c := benchCalendar(b).Calendar()
	for b.Loop() {
		if _, err := c.Compile(); err != nil {
			b.Fatal(err)
		}
	}
}

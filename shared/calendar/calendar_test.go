package calendar

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

// at reads "2026-03-09 09:00" in zone.
func at(t *testing.T, zone, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustCompile(t testing.TB, c Calendar) *Compiled {
	t.Helper()
	cc, err := c.Compile()
	if err != nil {
		t.Fatalf("Compile(%+v): %v", c, err)
	}
	return cc
}

func weekdays(ranges ...string) map[string][]string {
	return map[string][]string{"mon": ranges, "tue": ranges, "wed": ranges, "thu": ranges, "fri": ranges}
}

func everyDay(ranges ...string) map[string][]string {
	h := weekdays(ranges...)
	h["sat"], h["sun"] = ranges, ranges
	return h
}

func TestCompileErrors(t *testing.T) {
	valid := weekdays("09:00-17:00")
	manyHolidays := make([]string, MaxHolidays+1)
	for i := range manyHolidays {
		manyHolidays[i] = time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	tests := []struct {
		name      string
		cal       Calendar
		wantField string
	}{
		{"no time zone", Calendar{Hours: valid}, "timeZone"},
		{"the machine's zone", Calendar{TimeZone: "Local", Hours: valid}, "timeZone"},
		{"unknown zone", Calendar{TimeZone: "Mars/Olympus_Mons", Hours: valid}, "timeZone"},
		{"a path, not a zone", Calendar{TimeZone: "../../etc/passwd", Hours: valid}, "timeZone"},
		{"long day name", Calendar{TimeZone: "UTC", Hours: map[string][]string{"monday": {"09:00-17:00"}}}, "hours.monday"},
		{"capitalised day", Calendar{TimeZone: "UTC", Hours: map[string][]string{"Mon": {"09:00-17:00"}}}, "hours.Mon"},
		{"single-digit hour", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"9:00-17:00"}}}, "hours.mon[0]"},
		{"no end", Calendar{TimeZone: "UTC", Hours: map[string][]string{"tue": {"09:00"}}}, "hours.tue[0]"},
		{"bad minute", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"09:00-17:00", "18:60-19:00"}}}, "hours.mon[1]"},
		{"past midnight", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"22:00-24:30"}}}, "hours.mon[0]"},
		{"hour 25", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"09:00-25:00"}}}, "hours.mon[0]"},
		{"starts at 24:00", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"24:00-24:00"}}}, "hours.mon[0]"},
		{"night shift across midnight", Calendar{TimeZone: "UTC", Hours: map[string][]string{"fri": {"22:00-06:00"}}}, "hours.fri[0]"},
		{"empty range", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"09:00-09:00"}}}, "hours.mon[0]"},
		{"overlap", Calendar{TimeZone: "UTC", Hours: map[string][]string{"wed": {"09:00-12:00", "11:00-13:00"}}}, "hours.wed[1]"},
		{"overlap written first", Calendar{TimeZone: "UTC", Hours: map[string][]string{"wed": {"11:00-13:00", "14:00-15:00", "09:00-12:00"}}}, "hours.wed[2]"},
		{"too many ranges", Calendar{TimeZone: "UTC", Hours: map[string][]string{"thu": strings.Split("00:00-01:00 02:00-03:00 04:00-05:00 06:00-07:00 08:00-09:00 10:00-11:00 12:00-13:00 14:00-15:00 16:00-17:00", " ")}}, "hours.thu"},
		{"no hours", Calendar{TimeZone: "UTC"}, "hours"},
		{"only closed days", Calendar{TimeZone: "UTC", Hours: map[string][]string{"sat": {}, "sun": nil}}, "hours"},
		{"bad month", Calendar{TimeZone: "UTC", Hours: valid, Holidays: []string{"2026-12-25", "2026-13-01"}}, "holidays[1]"},
		{"short year", Calendar{TimeZone: "UTC", Hours: valid, Holidays: []string{"26-12-25"}}, "holidays[0]"},
		{"too many holidays", Calendar{TimeZone: "UTC", Hours: valid, Holidays: manyHolidays}, "holidays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.cal.Compile()
			if err == nil {
				t.Fatalf("Compile() = %v, want an error on %s", c, tt.wantField)
			}
			if got := fault.KindOf(err); got != fault.Invalid {
				t.Errorf("kind = %v, want invalid (%v)", got, err)
			}
			if got := fault.FieldOf(err); got != tt.wantField {
				t.Errorf("field = %q, want %q (%v)", got, tt.wantField, err)
			}
		})
	}
}

func TestCompileNormalises(t *testing.T) {
	tests := []struct {
		name string
		cal  Calendar
		want Calendar
	}{
		{
			name: "default",
			cal:  Default(),
			want: Calendar{TimeZone: "UTC", Hours: weekdays("09:00-17:00")},
		},
		{
			name: "sorted, touching ranges merged, en dash and spaces read",
			cal: Calendar{TimeZone: "Asia/Kuala_Lumpur", Hours: map[string][]string{
				"mon": {"13:00 – 18:00", "09:00-12:00"},
				"tue": {"14:00-18:00", "09:00–12:00", "12:00-13:00"},
				"sat": {},
			}},
			want: Calendar{TimeZone: "Asia/Kuala_Lumpur", Hours: map[string][]string{
				"mon": {"09:00-12:00", "13:00-18:00"},
				"tue": {"09:00-13:00", "14:00-18:00"},
			}},
		},
		{
			name: "24:00 ends a day",
			cal:  Calendar{TimeZone: "UTC", Hours: map[string][]string{"sun": {"18:00-24:00"}}},
			want: Calendar{TimeZone: "UTC", Hours: map[string][]string{"sun": {"18:00-24:00"}}},
		},
		{
			name: "holidays sorted and unique",
			cal:  Calendar{TimeZone: "UTC", Hours: weekdays("09:00-17:00"), Holidays: []string{"2026-12-25", "2026-01-01", "2026-12-25"}},
			want: Calendar{TimeZone: "UTC", Hours: weekdays("09:00-17:00"), Holidays: []string{"2026-01-01", "2026-12-25"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.cal)
			got := c.Calendar()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Calendar() = %+v, want %+v", got, tt.want)
			}
			if again := mustCompile(t, got).Calendar(); !reflect.DeepEqual(again, got) {
				t.Errorf("compiling the normal form again gave %+v, want %+v", again, got)
			}
			// The normal form is a copy: changing it must not change the compiled calendar.
			got.Hours["mon"] = []string{"00:00-01:00"}
			if !reflect.DeepEqual(c.Calendar(), tt.want) {
				t.Error("changing the result of Calendar() changed the compiled calendar")
			}
			if got := c.Location().String(); got != tt.want.TimeZone {
				t.Errorf("Location() = %q, want %q", got, tt.want.TimeZone)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name string
		cal  Calendar
		want string
	}{
		{"default", Default(), "Mon–Fri 09:00–17:00 (UTC)"},
		{"lunch break", Calendar{TimeZone: "Asia/Kuala_Lumpur", Hours: weekdays("09:00-12:00", "13:00-18:00")}, "Mon–Fri 09:00–12:00, 13:00–18:00 (Asia/Kuala_Lumpur)"},
		{"short Friday", Calendar{TimeZone: "UTC", Hours: map[string][]string{
			"mon": {"09:00-18:00"}, "tue": {"09:00-18:00"}, "wed": {"09:00-18:00"}, "thu": {"09:00-18:00"}, "fri": {"09:00-12:00"},
		}}, "Mon–Thu 09:00–18:00, Fri 09:00–12:00 (UTC)"},
		{"days apart are not grouped", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"09:00-17:00"}, "wed": {"09:00-17:00"}}}, "Mon 09:00–17:00, Wed 09:00–17:00 (UTC)"},
		{"weekend team", Calendar{TimeZone: "Europe/London", Hours: map[string][]string{"sat": {"10:00-14:00"}, "sun": {"10:00-14:00"}}}, "Sat–Sun 10:00–14:00 (Europe/London)"},
		{"always", Calendar{TimeZone: "UTC", Hours: everyDay("00:00-24:00")}, "Mon–Sun 00:00–24:00 (UTC)"},
		{"merged before shown", Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"13:00-18:00", "09:00-13:00"}}}, "Mon 09:00–18:00 (UTC)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustCompile(t, tt.cal).String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// Calendars the arithmetic tests share.
var (
	kualaLumpur = Calendar{
		TimeZone: "Asia/Kuala_Lumpur",
		Hours:    weekdays("09:00-12:00", "13:00-18:00"),
		Holidays: []string{"2026-08-31"}, // Merdeka, a Monday
	}
	// nights is worked over the hours when Europe and America change their clocks.
	newYorkNights = Calendar{TimeZone: "America/New_York", Hours: everyDay("01:00-03:00")}
	londonNights  = Calendar{TimeZone: "Europe/London", Hours: everyDay("01:00-03:00")}
	lordHowe      = Calendar{TimeZone: "Australia/Lord_Howe", Hours: everyDay("01:00-03:00")}
	newYorkOffice = Calendar{TimeZone: "America/New_York", Hours: weekdays("09:00-17:00")}
	londonOffice  = Calendar{TimeZone: "Europe/London", Hours: weekdays("09:00-17:00")}
	sydneyOffice  = Calendar{TimeZone: "Australia/Sydney", Hours: weekdays("09:00-17:00")}
	shanghai      = Calendar{
		TimeZone: "Asia/Shanghai",
		Hours:    weekdays("09:00-12:00", "14:00-18:00"),
		Holidays: []string{"2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"}, // National Day week
	}
	lateShift = Calendar{TimeZone: "UTC", Hours: map[string][]string{"mon": {"18:00-24:00"}, "tue": {"00:00-02:00"}}}
	always    = Calendar{TimeZone: "UTC", Hours: everyDay("00:00-24:00")}
)

// arithmeticCases are the cases of Add; Between must give each duration back.
var arithmeticCases = []struct {
	name string
	cal  Calendar
	zone string // of from and want, when not the calendar's
	from string
	d    time.Duration
	want string
}{
	{name: "same day", cal: kualaLumpur, from: "2026-03-09 09:30", d: 2 * time.Hour, want: "2026-03-09 11:30"},
	{name: "over lunch", cal: kualaLumpur, from: "2026-03-09 11:00", d: 2 * time.Hour, want: "2026-03-09 14:00"},
	{name: "overnight", cal: kualaLumpur, from: "2026-03-09 17:00", d: 2 * time.Hour, want: "2026-03-10 10:00"},
	{name: "over the weekend", cal: kualaLumpur, from: "2026-03-13 17:30", d: time.Hour, want: "2026-03-16 09:30"},
	{name: "over a holiday", cal: kualaLumpur, from: "2026-08-28 17:00", d: 2 * time.Hour, want: "2026-09-01 10:00"},
	{name: "ends with the morning", cal: kualaLumpur, from: "2026-03-09 09:00", d: 3 * time.Hour, want: "2026-03-09 12:00"},
	{name: "ends with the day", cal: kualaLumpur, from: "2026-03-09 09:00", d: 8 * time.Hour, want: "2026-03-09 18:00"},
	{name: "ends with the week", cal: kualaLumpur, from: "2026-03-09 09:00", d: 40 * time.Hour, want: "2026-03-13 18:00"},
	{name: "starts at lunch", cal: kualaLumpur, from: "2026-03-09 12:30", d: 30 * time.Minute, want: "2026-03-09 13:30"},
	{name: "starts on Saturday", cal: kualaLumpur, from: "2026-03-14 10:00", d: time.Hour, want: "2026-03-16 10:00"},
	{name: "starts before opening", cal: kualaLumpur, from: "2026-03-09 06:00", d: time.Hour, want: "2026-03-09 10:00"},
	{name: "starts after closing", cal: kualaLumpur, from: "2026-03-09 18:00", d: time.Hour, want: "2026-03-10 10:00"},
	{name: "starts on a holiday", cal: kualaLumpur, from: "2026-08-31 10:00", d: time.Hour, want: "2026-09-01 10:00"},
	{name: "two weeks to the minute", cal: kualaLumpur, from: "2026-03-09 09:00", d: 80 * time.Hour, want: "2026-03-20 18:00"},
	{name: "two weeks and an hour", cal: kualaLumpur, from: "2026-03-09 09:00", d: 81 * time.Hour, want: "2026-03-23 10:00"},
	{name: "a year, holiday inside", cal: kualaLumpur, from: "2026-01-05 09:00", d: 52 * 40 * time.Hour, want: "2027-01-04 18:00"},
	{name: "from another zone", cal: kualaLumpur, zone: "UTC", from: "2026-03-09 00:30", d: time.Hour, want: "2026-03-09 02:00"},
	{name: "to 24:00", cal: lateShift, from: "2026-03-09 18:00", d: 6 * time.Hour, want: "2026-03-10 00:00"},
	{name: "over midnight", cal: lateShift, from: "2026-03-09 23:00", d: 2 * time.Hour, want: "2026-03-10 01:00"},
	{name: "a week after 24:00", cal: lateShift, from: "2026-03-10 01:00", d: 2 * time.Hour, want: "2026-03-16 19:00"},
	{name: "24 hours a day", cal: always, from: "2026-03-09 05:17", d: 100 * time.Hour, want: "2026-03-13 09:17"},

	// 01:00–03:00 on the day New York springs forward over 02:00 lasts an hour, falling back
	// three hours.
	{name: "New York spring night", cal: newYorkNights, from: "2026-03-08 01:00", d: time.Hour, want: "2026-03-08 03:00"},
	{name: "New York spring night, more", cal: newYorkNights, from: "2026-03-08 01:00", d: 2 * time.Hour, want: "2026-03-09 02:00"},
	{name: "New York spring, in the gap", cal: newYorkNights, zone: "UTC", from: "2026-03-08 06:30", d: 30 * time.Minute, want: "2026-03-08 07:00"},
	{name: "New York autumn night", cal: newYorkNights, from: "2026-11-01 01:00", d: 3 * time.Hour, want: "2026-11-01 03:00"},
	{name: "New York autumn night, second 01:30", cal: newYorkNights, zone: "UTC", from: "2026-11-01 05:00", d: 150 * time.Minute, want: "2026-11-01 07:30"},
	{name: "New York office over spring weekend", cal: newYorkOffice, from: "2026-03-06 16:00", d: 2 * time.Hour, want: "2026-03-09 10:00"},
	{name: "New York office over autumn weekend", cal: newYorkOffice, from: "2026-10-30 16:00", d: 2 * time.Hour, want: "2026-11-02 10:00"},
	{name: "London spring night", cal: londonNights, from: "2026-03-29 00:00", d: time.Hour, want: "2026-03-29 03:00"},
	{name: "London autumn night", cal: londonNights, zone: "UTC", from: "2026-10-25 00:00", d: 3 * time.Hour, want: "2026-10-25 03:00"},
	{name: "London office over spring weekend", cal: londonOffice, from: "2026-03-27 16:00", d: 2 * time.Hour, want: "2026-03-30 10:00"},
	{name: "London office over autumn weekend", cal: londonOffice, from: "2026-10-23 16:00", d: 2 * time.Hour, want: "2026-10-26 10:00"},
	// Lord Howe moves its clocks by half an hour at 02:00.
	{name: "Lord Howe spring night", cal: lordHowe, from: "2026-10-04 01:00", d: 90 * time.Minute, want: "2026-10-04 03:00"},
	{name: "Lord Howe autumn night", cal: lordHowe, zone: "UTC", from: "2026-04-04 14:00", d: 150 * time.Minute, want: "2026-04-04 16:30"},
	{name: "Sydney office over spring weekend", cal: sydneyOffice, from: "2026-10-02 16:00", d: 2 * time.Hour, want: "2026-10-05 10:00"},
	{name: "Sydney office over autumn weekend", cal: sydneyOffice, from: "2026-04-03 16:00", d: 2 * time.Hour, want: "2026-04-06 10:00"},
	{name: "Shanghai over National Day", cal: shanghai, from: "2026-09-30 17:00", d: 2 * time.Hour, want: "2026-10-08 10:00"},
	{name: "Shanghai lunch", cal: shanghai, from: "2026-10-08 11:00", d: 2 * time.Hour, want: "2026-10-08 15:00"},
}

func TestAdd(t *testing.T) {
	for _, tt := range arithmeticCases {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.cal)
			zone := tt.cal.TimeZone
			if tt.zone != "" {
				zone = tt.zone
			}
			from, want := at(t, zone, tt.from), at(t, zone, tt.want)
			got := c.Add(from, tt.d)
			if !got.Equal(want) {
				t.Errorf("Add(%v, %v) = %v, want %v", from, tt.d, got, want.In(c.Location()))
			}
			if got.Location() != c.Location() {
				t.Errorf("Add returned a time in %v, want the calendar's %v", got.Location(), c.Location())
			}
			if back := c.Between(from, got); back != tt.d {
				t.Errorf("Between(%v, %v) = %v, want %v", from, got, back, tt.d)
			}
		})
	}
}

func TestAddNothing(t *testing.T) {
	c := mustCompile(t, kualaLumpur)
	for _, from := range []time.Time{
		at(t, "Asia/Kuala_Lumpur", "2026-03-09 10:00"), // working
		at(t, "Asia/Kuala_Lumpur", "2026-03-14 10:00"), // Saturday
		at(t, "UTC", "2026-03-14 10:00"),
	} {
		for _, d := range []time.Duration{0, -time.Hour} {
			if got := c.Add(from, d); !got.Equal(from) || got.Location() != c.Location() {
				t.Errorf("Add(%v, %v) = %v, want %v in %v", from, d, got, from, c.Location())
			}
		}
	}
}

func TestBetween(t *testing.T) {
	tests := []struct {
		name string
		cal  Calendar
		a, b string
		want time.Duration
	}{
		{"same instant", kualaLumpur, "2026-03-09 10:00", "2026-03-09 10:00", 0},
		{"backwards", kualaLumpur, "2026-03-09 11:00", "2026-03-09 10:00", 0},
		{"within a morning", kualaLumpur, "2026-03-09 09:15", "2026-03-09 11:45", 150 * time.Minute},
		{"over lunch", kualaLumpur, "2026-03-09 11:00", "2026-03-09 14:00", 2 * time.Hour},
		{"during lunch", kualaLumpur, "2026-03-09 12:10", "2026-03-09 12:50", 0},
		{"weekend", kualaLumpur, "2026-03-14 00:00", "2026-03-16 00:00", 0},
		{"a whole week", kualaLumpur, "2026-03-09 00:00", "2026-03-16 00:00", 40 * time.Hour},
		{"a week with a holiday", kualaLumpur, "2026-08-31 00:00", "2026-09-07 00:00", 32 * time.Hour},
		{"on a holiday", kualaLumpur, "2026-08-31 08:00", "2026-08-31 20:00", 0},
		{"from lunch to next morning", kualaLumpur, "2026-03-09 12:30", "2026-03-10 10:00", 6 * time.Hour},
		{"a year", kualaLumpur, "2026-01-01 00:00", "2027-01-01 00:00", (261 - 1) * 8 * time.Hour},
		{"24 hours a day is real time over spring", Calendar{TimeZone: "America/New_York", Hours: everyDay("00:00-24:00")}, "2026-03-07 00:00", "2026-03-09 00:00", 47 * time.Hour},
		{"24 hours a day is real time over autumn", Calendar{TimeZone: "Europe/London", Hours: everyDay("00:00-24:00")}, "2026-10-24 00:00", "2026-10-26 00:00", 49 * time.Hour},
		{"New York spring Sunday, 09:00–17:00", Calendar{TimeZone: "America/New_York", Hours: everyDay("09:00-17:00")}, "2026-03-08 00:00", "2026-03-09 00:00", 8 * time.Hour},
		{"New York spring night", newYorkNights, "2026-03-08 00:00", "2026-03-09 00:00", time.Hour},
		{"New York autumn night", newYorkNights, "2026-11-01 00:00", "2026-11-02 00:00", 3 * time.Hour},
		{"London spring night", londonNights, "2026-03-29 00:00", "2026-03-30 00:00", time.Hour},
		{"London autumn night", londonNights, "2026-10-25 00:00", "2026-10-26 00:00", 3 * time.Hour},
		{"Lord Howe spring night", lordHowe, "2026-10-04 00:00", "2026-10-05 00:00", 90 * time.Minute},
		{"Lord Howe autumn night", lordHowe, "2026-04-05 00:00", "2026-04-06 00:00", 150 * time.Minute},
		// Santiago falls back at midnight: 23:00–24:00 on the Saturday happens twice.
		{"Santiago autumn, to 24:00", Calendar{TimeZone: "America/Santiago", Hours: everyDay("22:00-24:00")}, "2026-04-04 00:00", "2026-04-05 00:00", 3 * time.Hour},
		// Beirut springs forward at midnight: there is no 00:00–01:00 that day.
		{"Beirut spring, from 00:00", Calendar{TimeZone: "Asia/Beirut", Hours: everyDay("00:00-02:00")}, "2026-03-29 00:00", "2026-03-30 00:00", time.Hour},
		// The zone database marks a change with no change of offset in 2038.
		{"Kuala Lumpur over 2038", Calendar{TimeZone: "Asia/Kuala_Lumpur", Hours: everyDay("00:00-24:00")}, "2038-01-01 00:00", "2038-02-01 00:00", 31 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.cal)
			a, b := at(t, tt.cal.TimeZone, tt.a), at(t, tt.cal.TimeZone, tt.b)
			if got := c.Between(a, b); got != tt.want {
				t.Errorf("Between(%v, %v) = %v, want %v", a, b, got, tt.want)
			}
		})
	}
}

func TestWorking(t *testing.T) {
	c := mustCompile(t, kualaLumpur)
	tests := []struct {
		at   string
		want bool
	}{
		{"2026-03-09 08:59", false},
		{"2026-03-09 09:00", true},
		{"2026-03-09 11:59", true},
		{"2026-03-09 12:00", false}, // the end of a range is not in it
		{"2026-03-09 12:59", false},
		{"2026-03-09 13:00", true},
		{"2026-03-09 18:00", false},
		{"2026-03-14 10:00", false}, // Saturday
		{"2026-08-31 10:00", false}, // holiday
	}
	for _, tt := range tests {
		if got := c.Working(at(t, "Asia/Kuala_Lumpur", tt.at)); got != tt.want {
			t.Errorf("Working(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
	late := mustCompile(t, lateShift)
	if !late.Working(at(t, "UTC", "2026-03-09 23:59")) || !late.Working(at(t, "UTC", "2026-03-10 00:00")) {
		t.Error("a range ending at 24:00 and its successor at 00:00 should both be working")
	}
}

// propertyZones are zones with each kind of clock change: an hour at 02:00 (New York), an hour
// at 01:00 UTC (London), half an hour (Lord Howe), at 02:45 with a 45-minute offset (Chatham),
// the southern hemisphere (Sydney), at midnight (Santiago, Beirut), and none (Kuala Lumpur, UTC).
var propertyZones = []string{
	"America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham",
	"Australia/Sydney", "America/Santiago", "Asia/Beirut", "Asia/Kuala_Lumpur", "UTC",
}

// propertyHours are weeks to test with: an office with lunch, ranges over the hours clocks
// change at, a team that never stops, and one hour a week.
var propertyHours = []map[string][]string{
	weekdays("09:00-12:30", "13:30-17:45"),
	everyDay("00:00-00:30", "01:15-03:00", "03:30-04:00", "22:00-24:00"),
	everyDay("00:00-24:00"),
	{"sun": {"02:00-03:00"}},
}

// TestProperties checks, over random instants and durations in years with clock changes, that
// Add and Between are inverse, that Add finds the first such instant, and that Between agrees with
// a plain day-by-day sum.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 11))
	lo := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	hi := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, zone := range propertyZones {
		for i, hours := range propertyHours {
			cal := Calendar{TimeZone: zone, Hours: hours}
			for year := 2019; year <= 2031; year++ {
				for range 15 {
					d := time.Date(year, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
					cal.Holidays = append(cal.Holidays, d.Format(time.DateOnly))
				}
			}
			c := mustCompile(t, cal)
			t.Run(zone+"/"+strconv.Itoa(i), func(t *testing.T) {
				for range 200 {
					a := time.Unix(0, lo+rng.Int64N(hi-lo))
					// Round a to the minute now and then: edges are where mistakes hide.
					if rng.IntN(2) == 0 {
						a = a.Truncate(time.Minute)
					}
					var d time.Duration
					switch rng.IntN(3) {
					case 0:
						d = time.Duration(rng.Int64N(int64(10 * time.Hour)))
					case 1:
						d = time.Duration(rng.IntN(3000)) * time.Hour
					default:
						d = time.Duration(rng.Int64N(int64(3000 * time.Hour)))
					}
					got := c.Add(a, d)
					if back := c.Between(a, got); back != d {
						t.Fatalf("Between(a, Add(a, d)) = %v, want %v, for a = %v, d = %v, Add = %v", back, d, a.In(c.Location()), d, got)
					}
					if d > 0 && c.Between(a, got.Add(-time.Nanosecond)) != d-time.Nanosecond {
						t.Fatalf("Add(%v, %v) = %v is not the first instant with that much business time", a.In(c.Location()), d, got)
					}
					b := a.Add(time.Duration(rng.Int64N(int64(60 * day))))
					if got, want := c.Between(a, b), slowBetween(c, a, b); got != want {
						t.Fatalf("Between(%v, %v) = %v, want %v by the day", a.In(c.Location()), b.In(c.Location()), got, want)
					}
				}
			})
		}
	}
}

// slowBetween is Between without shortcuts: every date walked, every edge read from the clock.
func slowBetween(c *Compiled, a, b time.Time) time.Duration {
	var total time.Duration
	var last time.Time // ends of earlier periods, so none is counted twice
	first, final := dayNumber(a.In(c.loc).Date())-1, dayNumber(b.In(c.loc).Date())+1
	for n := first; n <= final; n++ {
		if slices.Contains(c.holidays, n) {
			continue
		}
		for _, s := range c.days[weekday(n)] {
			start, end := c.reading(n, s.start), c.reading(n, s.end)
			if start.Before(a) {
				start = a
			}
			if start.Before(last) {
				start = last
			}
			if end.After(b) {
				end = b
			}
			if end.After(start) {
				total += end.Sub(start)
				last = end
			}
		}
	}
	return total
}

// TestReading checks the instant a wall time maps to against the clock itself, minute by minute,
// on the days around every clock change of the property zones from 2024 to 2027.
func TestReading(t *testing.T) {
	for _, zone := range propertyZones {
		c := mustCompile(t, Calendar{TimeZone: zone, Hours: weekdays("09:00-17:00")})
		for _, change := range clockChanges(c.loc, 2024, 2028) {
			n := dayNumber(change.In(c.loc).Date())
			for date := n - 1; date <= n+1; date++ {
				for tod := time.Duration(0); tod <= day; tod += 15 * time.Minute {
					got := c.reading(date, tod)
					want := firstReading(c.loc, date*secondsPerDay+int64(tod/time.Second), got)
					if !got.Equal(want) {
						t.Errorf("%s: reading(%v %v) = %v, want %v", zone, dateOf(date).Format(time.DateOnly), tod, got, want)
					}
				}
			}
		}
	}
}

// clockChanges lists the instants at which loc changes offset in [from, to).
func clockChanges(loc *time.Location, from, to int) []time.Time {
	var out []time.Time
	t := time.Date(from, 1, 1, 0, 0, 0, 0, loc)
	for t.Year() < to {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Year() >= to {
			break
		}
		out = append(out, end)
		t = end
	}
	return out
}

// firstReading finds by brute force the first instant, at minute precision, at which loc's clock
// shows wall (seconds since 1970 as if UTC) or later, searching three hours either side of near.
func firstReading(loc *time.Location, wall int64, near time.Time) time.Time {
	for t := near.Add(-3 * time.Hour).Truncate(time.Minute); t.Before(near.Add(3 * time.Hour)); t = t.Add(time.Minute) {
		if _, off := t.Zone(); t.Unix()+int64(off) >= wall {
			return t
		}
	}
	return time.Time{}
}

func FuzzCompile(f *testing.F) {
	f.Add("Asia/Kuala_Lumpur", "mon", "09:00-12:00,13:00-18:00", "2026-08-31")
	f.Add("America/New_York", "sun", "01:00-03:00", "")
	f.Add("Australia/Lord_Howe", "sat", "00:00-24:00", "2026-10-03,2026-10-03")
	f.Add("Local", "monday", "9-5", "yesterday")
	f.Add("", "tue", "17:00–09:00", "2026-02-30")
	from := []time.Time{
		time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC),
		time.Date(2026, 10, 4, 15, 45, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999, time.UTC),
	}
	f.Fuzz(func(t *testing.T, zone, key, ranges, holidays string) {
		cal := Calendar{TimeZone: zone, Hours: map[string][]string{key: strings.Split(ranges, ",")}}
		if holidays != "" {
			cal.Holidays = strings.Split(holidays, ",")
		}
		c, err := cal.Compile()
		if err != nil {
			if fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) == "" {
				t.Fatalf("Compile: %v is not an invalid field", err)
			}
			return
		}
		if c.String() == "" {
			t.Error("String() is empty")
		}
		if again, err := c.Calendar().Compile(); err != nil || !reflect.DeepEqual(again.Calendar(), c.Calendar()) {
			t.Fatalf("the normal form %+v does not compile to itself: %v", c.Calendar(), err)
		}
		for _, a := range from {
			for _, d := range []time.Duration{time.Nanosecond, 8 * time.Hour, 2000 * time.Hour} {
				if back := c.Between(a, c.Add(a, d)); back != d {
					t.Fatalf("Between(a, Add(a, %v)) = %v", d, back)
				}
			}
		}
	})
}

package mail

import (
	"errors"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"
)

// zoneOffsets are the zone names seen in Date headers, in seconds east of UTC. RFC 5322 defines the
// North American ones; the rest are what mailers actually write. Ambiguous names take the reading
// RFC 5322 or most mail uses (CST is US Central, IST is India).
var zoneOffsets = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
	"AKST": -9 * 3600, "AKDT": -8 * 3600, "HST": -10 * 3600, "AST": -4 * 3600, "ADT": -3 * 3600,
	"NST": -12600, "NDT": -9000,
	"BST": 3600, "IST": 19800, "WEST": 3600, "CET": 3600, "MET": 3600, "CEST": 7200, "MEST": 7200,
	"EET": 7200, "EEST": 3 * 3600, "MSK": 3 * 3600, "MSD": 4 * 3600,
	"ICT": 7 * 3600, "WIB": 7 * 3600, "SGT": 8 * 3600, "MYT": 8 * 3600, "HKT": 8 * 3600,
	"PHT": 8 * 3600, "AWST": 8 * 3600, "JST": 9 * 3600, "KST": 9 * 3600, "ACST": 34200,
	"ACDT": 37800, "AEST": 10 * 3600, "AEDT": 11 * 3600, "NZST": 12 * 3600, "NZDT": 13 * 3600,
}

// fallbackLayouts are tried, in order, on a date that net/mail rejects once it has been cleaned:
// no comments or day name, commas gone, zone names turned into offsets.
var fallbackLayouts = []string{
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04 -0700",
	"2 January 2006 15:04:05 -0700",
	"2 January 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -07:00",
	"2-Jan-2006 15:04:05 -0700",
	"Jan 2 2006 15:04:05 -0700",
	"January 2 2006 15:04:05 -0700",
	"Jan 2 15:04:05 -0700 2006", // date(1)
	"Jan 2 15:04:05 2006 -0700",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05 -07:00",
	"2006/01/02 15:04:05 -0700",
	// No zone at all: read as UTC, the best guess an archive can make.
	"2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04",
	"2 Jan 06 15:04:05",
	"Jan 2 15:04:05 2006", // ctime(3)
	"Jan 2 2006 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	// Outlook's locale format: "Thursday, April 09, 2003 9:00 AM".
	"January 2 2006 3:04 PM",
	"January 2 2006 3:04:05 PM",
	"2 Jan 06 3:04:05 PM",
	"2 Jan 2006 3:04:05 PM",
}

var errBadDate = errors.New("mail: cannot read date")

// ParseDate reads a Date header value. It accepts RFC 5322 and its obsolete forms (zone names, two
// digit years, no seconds, comments) and the broken forms common in real mail (ISO 8601, ctime,
// offsets without sign, day names in full). The result is in UTC.
func ParseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(stripComments(s))
	if len(s) > 128 {
		return time.Time{}, errBadDate // no date is this long; do not spend time on it
	}
	for _, layout := range [...]string{"Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := netmail.ParseDate(s); err == nil {
		return fixZone(t).UTC(), nil
	}
	clean := cleanDate(s)
	for _, layout := range fallbackLayouts {
		if t, err := time.Parse(layout, clean); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errBadDate
}

// fixZone gives a time parsed with a zone name its real offset: time.Parse makes up a zero-offset
// zone for names it does not know.
func fixZone(t time.Time) time.Time {
	name, off := t.Zone()
	if off != 0 {
		return t
	}
	if real, ok := zoneOffsets[strings.ToUpper(name)]; ok && real != 0 {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(),
			time.FixedZone(name, real))
	}
	return t
}

func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// cleanDate rewrites a date into the shape fallbackLayouts expect.
func cleanDate(s string) string {
	s = strings.NewReplacer(",", " ", "\r", " ", "\n", " ").Replace(s)
	fields := strings.Fields(s)
	// Obsolete syntax allows spaces around the colons of the time: "09 : 55 : 06".
	for i := 0; i < len(fields); i++ {
		for i+1 < len(fields) && (strings.HasSuffix(fields[i], ":") || strings.HasPrefix(fields[i+1], ":")) {
			fields[i] += fields[i+1]
			fields = append(fields[:i+1], fields[i+2:]...)
		}
	}
	hasOffset := false
	for _, f := range fields {
		if isOffset(f) {
			hasOffset = true
		}
	}
	out := fields[:0] // at most one field out per field in, so the array can be shared
	for i, f := range fields {
		up := strings.ToUpper(strings.TrimSuffix(f, "."))
		switch {
		case i == 0 && len(up) >= 3 && isDayName(up):
			continue
		case isZoneName(up):
			if !hasOffset {
				out = append(out, formatOffset(zoneOffsets[up]))
				hasOffset = true
			}
			continue
		case (strings.HasPrefix(up, "GMT") || strings.HasPrefix(up, "UTC")) && len(up) > 3:
			if off, ok := parseLooseOffset(up[3:]); ok && !hasOffset {
				out = append(out, formatOffset(off))
				hasOffset = true
			}
			continue
		case len(f) == 4 && isDigits(f) && f <= "1400" && f[2] < '6' && i > 0 && strings.Contains(fields[i-1], ":") && i == len(fields)-1:
			f = "+" + f // an offset that lost its sign; a year would be larger
		case len(f) == 3 && isDigits(f) && i+1 < len(fields) && strings.Contains(fields[i+1], ":"):
			n, _ := strconv.Atoi(f)
			f = strconv.Itoa(1900 + n) // RFC 5322 4.3: a three-digit year counts from 1900
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

func isOffset(f string) bool {
	return len(f) >= 5 && (f[0] == '+' || f[0] == '-') && isDigits(strings.ReplaceAll(f[1:], ":", ""))
}

func isDayName(up string) bool {
	switch up[:3] {
	case "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN":
		return true
	}
	return false
}

func isZoneName(up string) bool {
	_, ok := zoneOffsets[up]
	return ok
}

func parseLooseOffset(s string) (int, bool) {
	if s == "" || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	digits := strings.ReplaceAll(s[1:], ":", "")
	if !isDigits(digits) || len(digits) == 0 || len(digits) > 4 {
		return 0, false
	}
	n, _ := strconv.Atoi(digits)
	h, m := n, 0
	if len(digits) > 2 {
		h, m = n/100, n%100
	}
	return sign * (h*3600 + m*60), true
}

func formatOffset(off int) string {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	h, m := off/3600, off%3600/60
	return string([]byte{sign, byte('0' + h/10), byte('0' + h%10), byte('0' + m/10), byte('0' + m%10)})
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

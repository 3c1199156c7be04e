package retention

import (
	"fmt"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 6, 15, 2, 10, 0, 0, time.UTC)
	first := time.Date(2019, 4, 2, 13, 0, 0, 0, time.UTC)
	v := Versions{Policies: 3, Holds: 7}
	policies := []Policy{keep("a", ScopeDomain, "example.com", 30), keep("b", ScopeGroup, "sales", 365), forever("c", ScopeLabel, "legal"), keep("d", ScopeLabel, "x", 30)}
	yesterday := now.Add(-24 * time.Hour)
	last := &Done{At: yesterday, FullAt: now.Add(-3 * 24 * time.Hour), Versions: v}
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name     string
		last     *Done
		policies []Policy
		v        Versions
		first    time.Time
		dryRun   bool
		full     bool
		windows  []Window
	}{
		{"first pass: full, from the first archived day to now less the shortest policy", nil, policies, v, first, false, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"nothing changed: incremental, a day's worth per number of days", last, policies, v, first, false, false,
			[]Window{{From: dayOf(yesterday.Add(-365 * Day)), After: yesterday.Add(-365 * Day), Until: at(365 * Day)},
				{From: dayOf(yesterday.Add(-30 * Day)), After: yesterday.Add(-30 * Day), Until: at(30 * Day)}}},
		{"a year since the last pass: full", &Done{At: now.Add(-400 * Day), FullAt: now.Add(-400 * Day), Versions: v}, policies, v, first, false, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"a policy changed: full", last, policies, Versions{Policies: 4, Holds: 7}, first, false, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"a hold changed: full", last, policies, Versions{Policies: 3, Holds: 8}, first, false, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"a lock or hold ended: full", &Done{At: yesterday, FullAt: yesterday, Versions: v, RecheckAt: now.Add(-time.Minute)}, policies, v, first, false, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"a week since the last full pass: full", &Done{At: yesterday, FullAt: now.Add(-7 * Day), Versions: v}, policies, v, first, false, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"a dry run is full", last, policies, v, first, true, true,
			[]Window{{From: time.Date(2019, 4, 2, 0, 0, 0, 0, time.UTC), Until: at(30 * Day)}}},
		{"only forever: nothing to walk", nil, []Policy{forever("c", ScopeLabel, "legal")}, v, first, false, true, nil},
		{"no policy: nothing to walk", nil, nil, v, first, false, true, nil},
		{"an empty archive: nothing to walk", nil, policies, v, time.Time{}, false, true, nil},
		{"the archive is younger than the shortest policy", nil, policies, v, now.Add(-29 * Day), false, true, nil},
		{"incremental with missed passes merges nearby days", &Done{At: now.Add(-3 * Day), FullAt: now.Add(-3 * Day), Versions: v},
			[]Policy{keep("a", ScopeDomain, "example.com", 30), keep("b", ScopeDomain, "example.com", 31)}, v, first, false, false,
			[]Window{{From: dayOf(now.Add(-34 * Day)), After: now.Add(-34 * Day), Until: at(30 * Day)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(tt.last, tt.policies, tt.v, tt.first, now, 7*Day, tt.dryRun)
			if p.Full != tt.full || fmt.Sprint(p.Windows) != fmt.Sprint(tt.windows) || p.Versions != tt.v || !p.At.Equal(now) || p.DryRun != tt.dryRun {
				t.Errorf("plan = full %v windows\n %v\nwant full %v\n %v", p.Full, p.Windows, tt.full, tt.windows)
			}
		})
	}
}

func TestDue(t *testing.T) {
	day := 24 * time.Hour
	last := &Done{At: time.Date(2026, 6, 15, 0, 40, 0, 0, time.UTC)}
	tests := []struct {
		name string
		last *Done
		now  time.Time
		want bool
	}{
		{"never ran", nil, time.Date(2026, 6, 15, 0, 5, 0, 0, time.UTC), true},
		{"later the same UTC day", last, time.Date(2026, 6, 15, 23, 59, 0, 0, time.UTC), false},
		{"the next UTC day, earlier in the hour", last, time.Date(2026, 6, 16, 0, 1, 0, 0, time.UTC), true},
		{"a hold ends", &Done{At: last.At, RecheckAt: time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)}, time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		if got := due(tt.last, tt.now, day); got != tt.want {
			t.Errorf("%s: due = %v, want %v", tt.name, got, tt.want)
		}
	}
}

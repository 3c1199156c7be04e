package retention

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/archive"
)

func TestObjectResultJoin(t *testing.T) {
	soon, later := received.Add(Day), received.Add(2*Day)
	tests := []struct {
		name string
		a, b ObjectResult
		want ObjectResult
	}{
		{"both deleted", ObjectResult{Versions: []string{"1"}}, ObjectResult{Versions: []string{"2", "3"}}, ObjectResult{Versions: []string{"1", "2", "3"}}},
		{"one locked", ObjectResult{Versions: []string{"1"}}, ObjectResult{Locked: true, LockedUntil: soon}, ObjectResult{Versions: []string{"1"}, Locked: true, LockedUntil: soon}},
		{"the later lock", ObjectResult{Locked: true, LockedUntil: later}, ObjectResult{Locked: true, LockedUntil: soon}, ObjectResult{Locked: true, LockedUntil: later}},
		{"a lock with no end outlasts a date", ObjectResult{Locked: true, LockedUntil: later}, ObjectResult{Locked: true}, ObjectResult{Locked: true}},
	}
	for _, tt := range tests {
		if got := (ObjectResult{}).join(tt.a).join(tt.b); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestObjectKeys(t *testing.T) {
	j := &Job{RawPrefix: "inbound/", RawDays: 30}
	rec := archive.Record{ID: "m1", Key: "archive/2025/03/10/m1.eml", RawKey: "inbound/m1", ReceivedAt: received}
	tests := []struct {
		name string
		rec  archive.Record
		at   time.Time
		want []string
	}{
		{"the lifecycle may not have expired the raw copy", rec, days(32), []string{rec.Key, rec.RawKey}},
		{"the lifecycle has", rec, days(33), []string{rec.Key}},
		{"an import's source is not a raw copy", func() archive.Record { r := rec; r.RawKey = "imports/x.mbox"; return r }(), days(1), []string{rec.Key}},
	}
	for _, tt := range tests {
		if got := j.objectKeys(tt.rec, tt.at); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := (&Job{}).objectKeys(rec, days(1)); fmt.Sprint(got) != fmt.Sprint([]string{rec.Key}) {
		t.Errorf("without RawPrefix: %v", got)
	}
}

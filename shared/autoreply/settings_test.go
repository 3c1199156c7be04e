package autoreply

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

// fakeDirectory is a directory with one mailbox and one group.
type fakeDirectory struct{}

func (fakeDirectory) Mailbox(_ context.Context, addr string) (directory.Mailbox, error) {
	if addr != "ana@example.com" {
		return directory.Mailbox{}, fault.New(fault.NotFound, "fake", "no mailbox %s", addr)
	}
	return directory.Mailbox{Address: addr, DisplayName: "Ana", Locale: "ms", TimeZone: "Asia/Kuala_Lumpur", Status: directory.StatusActive}, nil
}

func (fakeDirectory) Group(_ context.Context, id string) (directory.Group, error) {
	if id != "support" {
		return directory.Group{}, fault.New(fault.NotFound, "fake", "no group %s", id)
	}
	return directory.Group{ID: id, Name: "Support", Addresses: []string{"support@example.com"}, Owners: []string{"lead@example.com"}}, nil
}

func invalidField(t *testing.T, err error) string {
	t.Helper()
	var f *fault.Error
	if !errors.As(err, &f) || f.Kind != fault.Invalid {
		t.Fatalf("error %v is not an Invalid fault", err)
	}
	return f.Field
}

func TestSettingsValidationNamesTheField(t *testing.T) {
	ctx := context.Background()
	ooo, ack, closed := OutOfOfficeSetting(fakeDirectory{}), AcknowledgementSetting(fakeDirectory{}), ClosedNoticeSetting(fakeDirectory{})
	cases := []struct {
		name  string
		kind  directory.SettingKind
		id    string
		body  string
		field string
	}{
		{"unknown mailbox", ooo, "bo@example.com", `{"enabled":true}`, "mailbox"},
		{"mailbox differs", ooo, "ana@example.com", `{"mailbox":"bo@example.com"}`, "mailbox"},
		{"bad start", ooo, "ana@example.com", `{"start":"tomorrow"}`, "start"},
		{"end before start", ooo, "ana@example.com", `{"start":"2026-12-20T09:00","end":"2026-12-19"}`, "end"},
		{"bad zone", ooo, "ana@example.com", `{"timeZone":"Mars/Olympus"}`, "timeZone"},
		{"bad audience", ooo, "ana@example.com", `{"audience":"friends"}`, "audience"},
		{"bad template", ooo, "ana@example.com", `{"internal":[{"language":"en","subject":"Away","body":"{{.Secret}}"}]}`, "internal[0].body"},
		{"template language twice", ooo, "ana@example.com", `{"external":[{"language":"en","subject":"A","body":"B"},{"language":"en-GB","subject":"A","body":"B"}]}`, "external[1].language"},
		{"unsupported language", ooo, "ana@example.com", `{"language":"fr"}`, "language"},
		{"a language matched only for want of a closer one", ooo, "ana@example.com", `{"language":"tlh"}`, "language"},
		{"repeat too long", ooo, "ana@example.com", `{"repeatDays":400}`, "repeatDays"},
		{"unknown field", ooo, "ana@example.com", `{"enabld":true}`, "enabld"},
		{"unknown group", ack, "sales", `{"enabled":true}`, "group"},
		{"negative promise", ack, "support", `{"promiseHours":-1}`, "promiseHours"},
		{"bad calendar", ack, "support", `{"calendar":{"timeZone":"UTC","hours":{"mon":["18:00-09:00"]}}}`, "calendar.hours.mon[0]"},
		{"forward without successor", closed, "ana@example.com", `{"forward":true}`, "forward"},
		{"bad successor", closed, "ana@example.com", `{"successor":"nobody"}`, "successor"},
		{"own successor", closed, "ana@example.com", `{"successor":"ANA@example.com"}`, "successor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.kind.Validate(ctx, c.id, []byte(c.body))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := invalidField(t, err); got != c.field {
				t.Errorf("field = %q, want %q (%v)", got, c.field, err)
			}
		})
	}
}

func TestSettingsNormalise(t *testing.T) {
	ctx := context.Background()
	body, err := OutOfOfficeSetting(fakeDirectory{}).Validate(ctx, "ana@example.com", []byte(`{"enabled":true,"start":"2026-12-20T09:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	var o OutOfOffice
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatal(err)
	}
	if o.Mailbox != "ana@example.com" || o.Audience != AudienceEveryone {
		t.Errorf("normalised %+v", o)
	}
	body, err = ClosedNoticeSetting(fakeDirectory{}).Validate(ctx, "ana@example.com", []byte(`{"enabled":true,"successor":"Bo@Example.COM","forward":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var n ClosedNotice
	_ = json.Unmarshal(body, &n)
	if n.Successor != "bo@example.com" {
		t.Errorf("successor %q, want it normalised", n.Successor)
	}
}

func TestOutOfOfficePeriodIsInTheMailboxZone(t *testing.T) {
	o := OutOfOffice{Enabled: true, Start: "2026-12-20T09:00", End: "2027-01-05"}
	kl, _ := time.LoadLocation("Asia/Kuala_Lumpur")
	start, end, err := o.Period("Asia/Kuala_Lumpur")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 20, 9, 0, 0, 0, kl); !start.Equal(want) {
		t.Errorf("start %s, want %s", start, want)
	}
	if want := time.Date(2027, 1, 5, 0, 0, 0, 0, kl); !end.Equal(want) {
		t.Errorf("end %s, want %s", end, want)
	}
	cases := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 12, 20, 0, 59, 0, 0, time.UTC), false}, // 08:59 in Kuala Lumpur
		{time.Date(2026, 12, 20, 1, 0, 0, 0, time.UTC), true},
		{time.Date(2027, 1, 4, 15, 59, 0, 0, time.UTC), true},
		{time.Date(2027, 1, 4, 16, 0, 0, 0, time.UTC), false}, // midnight in Kuala Lumpur
	}
	for _, c := range cases {
		if got := o.Active("Asia/Kuala_Lumpur", c.at); got != c.want {
			t.Errorf("Active(%s) = %v, want %v", c.at, got, c.want)
		}
	}
	o.Enabled = false
	if o.Active("Asia/Kuala_Lumpur", time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC)) {
		t.Error("a disabled reply is active")
	}
	// An RFC 3339 instant is taken as it is, whatever the zone.
	o = OutOfOffice{Enabled: true, End: "2026-12-20T09:00:00Z"}
	if !o.Active("Asia/Kuala_Lumpur", time.Date(2026, 12, 20, 8, 59, 0, 0, time.UTC)) ||
		o.Active("Asia/Kuala_Lumpur", time.Date(2026, 12, 20, 9, 0, 0, 0, time.UTC)) {
		t.Error("an RFC 3339 end is not the instant it names")
	}
}

func TestSettingAccess(t *testing.T) {
	ctx := context.Background()
	ooo, ack, closed := OutOfOfficeSetting(fakeDirectory{}), AcknowledgementSetting(fakeDirectory{}), ClosedNoticeSetting(fakeDirectory{})
	ana := directory.Principal{Subject: "ana", Email: "ana@example.com", Roles: []string{directory.RoleEmployee}}
	lead := directory.Principal{Subject: "lead", Email: "lead@example.com", Roles: []string{directory.RoleGroupManager}}
	auditor := directory.Principal{Subject: "aud", Roles: []string{directory.RoleAuditor}}
	admin := directory.Principal{Subject: "adm", Roles: []string{directory.RoleAdmin}}
	cases := []struct {
		name  string
		kind  directory.SettingKind
		p     directory.Principal
		id    string
		write bool
		ok    bool
	}{
		{"employee writes own out-of-office", ooo, ana, "ana@example.com", true, true},
		{"employee reads own out-of-office", ooo, ana, "ana@example.com", false, true},
		{"employee writes another's out-of-office", ooo, ana, "bo@example.com", true, false},
		{"employee writes own closed notice", closed, ana, "ana@example.com", true, false},
		{"owner writes group acknowledgement", ack, lead, "support", true, true},
		{"non-owner writes acknowledgement", ack, ana, "support", true, false},
		{"auditor reads", ooo, auditor, "ana@example.com", false, true},
		{"auditor writes", ooo, auditor, "ana@example.com", true, false},
		{"admin writes closed notice", closed, admin, "ana@example.com", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.kind.Access != nil {
				err = c.kind.Access(ctx, c.p, "test", c.id, c.write)
			} else if c.write {
				err = c.p.Allow("test", true, directory.RoleAdmin)
			} else {
				err = c.p.Allow("test", false, directory.RoleAdmin, directory.RoleAuditor)
			}
			if (err == nil) != c.ok {
				t.Errorf("allowed = %v, want %v (%v)", err == nil, c.ok, err)
			}
			if err != nil && !fault.Is(err, fault.Forbidden) {
				t.Errorf("refusal is %v, want Forbidden", err)
			}
		})
	}
}

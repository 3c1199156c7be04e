package retention

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/directory"
	"github.com/mailroom/mailroom/shared/fault"
)

func TestPolicySetting(t *testing.T) {
	kind := PolicySetting()
	tests := []struct {
		name, id, body string
		want           string // the normalised body, or
		field          string // the field an Invalid error names
	}{
		{"days by domain", "fin", `{"scope":{"kind":"domain","value":"Example.COM"},"keepDays":2557}`,
			`{"id":"fin","name":"fin","scope":{"kind":"domain","value":"example.com"},"keepDays":2557,"version":0,"createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z"}`, ""},
		{"forever by mailbox", "ceo", `{"name":"CEO","scope":{"kind":"mailbox","value":"CEO@Example.com"},"forever":true}`,
			`{"id":"ceo","name":"CEO","scope":{"kind":"mailbox","value":"ceo@example.com"},"forever":true,"version":0,"createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z"}`, ""},
		{"label lower-cased", "inv", `{"scope":{"kind":"label","value":"Invoices"},"keepDays":90}`,
			`{"id":"inv","name":"inv","scope":{"kind":"label","value":"invoices"},"keepDays":90,"version":0,"createdAt":"0001-01-01T00:00:00Z","updatedAt":"0001-01-01T00:00:00Z"}`, ""},
		{"neither days nor forever", "p", `{"scope":{"kind":"group","value":"sales"}}`, "", "keepDays"},
		{"both", "p", `{"scope":{"kind":"group","value":"sales"},"keepDays":3,"forever":true}`, "", "keepDays"},
		{"too many days", "p", `{"scope":{"kind":"group","value":"sales"},"keepDays":36501}`, "", "keepDays"},
		{"negative days", "p", `{"scope":{"kind":"group","value":"sales"},"keepDays":-1}`, "", "keepDays"},
		{"a hold's scope kind", "p", `{"scope":{"kind":"sender","value":"a@b.example"},"keepDays":3}`, "", "scope.kind"},
		{"a query", "p", `{"scope":{"kind":"group","value":"sales","query":{"subject":"x"}},"keepDays":3}`, "", "scope.query"},
		{"bad group", "p", `{"scope":{"kind":"group","value":"Sales Team"},"keepDays":3}`, "", "scope.value"},
		{"bad address", "p", `{"scope":{"kind":"mailbox","value":"nobody"},"keepDays":3}`, "", "scope.value"},
		{"no value", "p", `{"scope":{"kind":"domain"},"keepDays":3}`, "", "scope.value"},
		{"other id", "p", `{"id":"q","scope":{"kind":"group","value":"sales"},"keepDays":3}`, "", "id"},
		{"bad id", "a#b", `{"scope":{"kind":"group","value":"sales"},"keepDays":3}`, "", "id"},
		{"unknown field", "p", `{"scope":{"kind":"group","value":"sales"},"keep_days":3}`, "", "keep_days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kind.Validate(context.Background(), tt.id, []byte(tt.body))
			if tt.field != "" {
				if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
					t.Fatalf("error %v (field %q), want Invalid naming %q", err, fault.FieldOf(err), tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("body\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

func TestHoldSetting(t *testing.T) {
	kind := HoldSetting()
	tests := []struct {
		name, body string
		field      string
		check      func(t *testing.T, h Hold)
	}{
		{"mailbox", `{"scope":{"kind":"mailbox","value":"Ana@Example.com"},"reason":" Case 26-118 ","owner":"Counsel@Example.com"}`, "",
			func(t *testing.T, h Hold) {
				if h.Scope.Value != "ana@example.com" || h.Owner != "counsel@example.com" || h.Reason != "Case 26-118" || !h.Active(time.Now()) {
					t.Errorf("hold %+v", h)
				}
			}},
		{"sender domain", `{"scope":{"kind":"sender","value":"Client.Example"},"reason":"r","owner":"c@example.com"}`, "",
			func(t *testing.T, h Hold) {
				if h.Scope.Value != "client.example" {
					t.Errorf("scope %+v", h.Scope)
				}
			}},
		{"query", `{"scope":{"kind":"query","query":{"sender":"kim@client.example","from":"2025-01-01T00:00:00+08:00","subject":"  ACME   merger "}},"reason":"r","owner":"c@example.com","releasedAt":"2027-01-01T00:00:00Z"}`, "",
			func(t *testing.T, h Hold) {
				q := h.Scope.Query
				if q == nil || q.Subject != "acme merger" || !q.From.Equal(time.Date(2024, 12, 31, 16, 0, 0, 0, time.UTC)) || q.From.Location() != time.UTC || h.Active(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("hold %+v query %+v", h, q)
				}
			}},
		{"no reason", `{"scope":{"kind":"label","value":"legal"},"owner":"c@example.com"}`, "reason", nil},
		{"a reason on two lines", `{"scope":{"kind":"label","value":"legal"},"reason":"a\nb","owner":"c@example.com"}`, "reason", nil},
		{"no owner", `{"scope":{"kind":"label","value":"legal"},"reason":"r"}`, "owner", nil},
		{"a policy's scope kind", `{"scope":{"kind":"domain","value":"example.com"},"reason":"r","owner":"c@example.com"}`, "scope.kind", nil},
		{"empty query", `{"scope":{"kind":"query","query":{}},"reason":"r","owner":"c@example.com"}`, "scope.query", nil},
		{"no query", `{"scope":{"kind":"query"},"reason":"r","owner":"c@example.com"}`, "scope.query", nil},
		{"query with a value", `{"scope":{"kind":"query","value":"x","query":{"subject":"x"}},"reason":"r","owner":"c@example.com"}`, "scope.value", nil},
		{"query upside down", `{"scope":{"kind":"query","query":{"from":"2025-02-01T00:00:00Z","to":"2025-01-01T00:00:00Z"}},"reason":"r","owner":"c@example.com"}`, "scope.query.to", nil},
		{"query with a bad sender", `{"scope":{"kind":"query","query":{"sender":"not an address"}},"reason":"r","owner":"c@example.com"}`, "scope.query.sender", nil},
		{"query on a mailbox scope", `{"scope":{"kind":"mailbox","value":"a@example.com","query":{"subject":"x"}},"reason":"r","owner":"c@example.com"}`, "scope.query", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kind.Validate(context.Background(), "h1", []byte(tt.body))
			if tt.field != "" {
				if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != tt.field {
					t.Fatalf("error %v (field %q), want Invalid naming %q", err, fault.FieldOf(err), tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h, err := HoldOf(directory.Setting{Kind: HoldKind, ID: "h1", Body: got})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, h)
		})
	}
}

func TestHoldAccess(t *testing.T) {
	kind := HoldSetting()
	admin := directory.Principal{Subject: "a", Roles: []string{directory.RoleAdmin}}
	auditor := directory.Principal{Subject: "b", Roles: []string{directory.RoleAuditor}}
	ctx := context.Background()
	if err := kind.Access(ctx, admin, "directory.DeleteSetting", "h1", true); !fault.Is(err, fault.Forbidden) {
		t.Errorf("an admin deleting a hold: %v, want Forbidden", err)
	}
	if err := kind.Access(ctx, admin, "directory.PutSetting", "h1", true); err != nil {
		t.Errorf("an admin placing a hold: %v", err)
	}
	if err := kind.Access(ctx, auditor, "directory.PutSetting", "h1", true); !fault.Is(err, fault.Forbidden) {
		t.Errorf("an auditor placing a hold: %v, want Forbidden", err)
	}
	if err := kind.Access(ctx, auditor, "directory.Setting", "h1", false); err != nil {
		t.Errorf("an auditor reading a hold: %v", err)
	}
}

func TestPolicyPresent(t *testing.T) {
	body, _ := json.Marshal(Policy{Scope: Scope{Kind: ScopeGroup, Value: "sales"}, KeepDays: 3})
	p, ok := PolicySetting().Present(directory.Setting{ID: "p", Body: body, Meta: directory.Meta{Version: 4}}).(Policy)
	if !ok || p.ID != "p" || p.Version != 4 || p.KeepDays != 3 {
		t.Errorf("Present = %+v", p)
	}
}

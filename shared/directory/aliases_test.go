package directory

import (
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestAliasLifecycle(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("ana@example.com")
	f.group(Group{ID: "sales", Name: "Sales", Addresses: []string{"sales@example.com", "ventas@example.com"}})

	a, err := f.svc.CreateAlias(f.ctx, admin, Alias{Address: "Info@Example.com", Target: "ANA@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Address != "info@example.com" || a.Target != "ana@example.com" || a.TargetKind != KindMailbox || a.TargetID != "ana@example.com" || a.Version != 1 {
		t.Errorf("created %+v, want an alias of the mailbox", a)
	}

	a, err = f.svc.UpdateAlias(f.ctx, admin, "info@example.com", []byte(`{"target":"ventas@example.com","targetKind":"mailbox"}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.TargetKind != KindGroup || a.TargetID != "sales" || a.Version != 2 {
		t.Errorf("updated %+v, want an alias of group sales (targetKind is Mailroom's)", a)
	}
	if refs, _ := f.store.Referrers(f.ctx, "group:sales"); len(refs) != 1 || refs[0] != "alias:info@example.com" {
		t.Errorf("Referrers(group:sales) = %v, want the alias", refs)
	}

	got, err := f.svc.Alias(f.ctx, auditor, "INFO@example.com")
	if err != nil || got != a {
		t.Errorf("Alias() = %+v, %v; want %+v", got, err, a)
	}

	list, next, err := f.svc.Aliases(f.ctx, auditor, Page{})
	if err != nil || next != "" || len(list) != 1 || list[0] != a {
		t.Errorf("Aliases() = %+v, %q, %v; want the one alias", list, next, err)
	}
	_, _, err = f.svc.Aliases(f.ctx, employee("ana@example.com"), Page{})
	wantKind(t, err, fault.Forbidden)

	if err := f.svc.DeleteAlias(f.ctx, admin, "info@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Alias(f.ctx, admin, "info@example.com")
	wantKind(t, err, fault.NotFound)
	// The address is free again.
	f.mailboxes("info@example.com")
}

func TestAliasErrors(t *testing.T) {
	tests := []struct {
		name  string
		alias Alias
		want  fault.Kind
		field string
	}{
		{"on a domain Mailroom does not serve", Alias{Address: "info@elsewhere.example", Target: "ana@example.com"}, fault.Invalid, "address"},
		{"at an address nobody owns", Alias{Address: "info@example.com", Target: "nobody@example.com"}, fault.Invalid, "target"},
		{"at an address outside Mailroom", Alias{Address: "info@example.com", Target: "ana@gmail.example"}, fault.Invalid, "target"},
		{"at another alias", Alias{Address: "info@example.com", Target: "hello@example.com"}, fault.Invalid, "target"},
		{"at itself", Alias{Address: "info@example.com", Target: "info@example.com"}, fault.Invalid, "target"},
		{"over a mailbox", Alias{Address: "ana@example.com", Target: "hello@example.com"}, fault.Invalid, "target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.mailboxes("ana@example.com")
			f.alias("hello@example.com", "ana@example.com")
			_, err := f.svc.CreateAlias(f.ctx, admin, tt.alias)
			wantKind(t, err, tt.want)
			if tt.field != "" {
				wantField(t, err, tt.field)
			}
		})
	}
	t.Run("an auditor cannot create one", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.svc.CreateAlias(f.ctx, auditor, Alias{Address: "info@example.com", Target: "ana@example.com"})
		wantKind(t, err, fault.Forbidden)
	})
	t.Run("the address cannot change", func(t *testing.T) {
		f := newFixture(t)
		f.domain("example.com")
		f.mailboxes("ana@example.com")
		f.alias("hello@example.com", "ana@example.com")
		_, err := f.svc.UpdateAlias(f.ctx, admin, "hello@example.com", []byte(`{"address":"hi@example.com"}`))
		wantField(t, err, "address")
	})
}

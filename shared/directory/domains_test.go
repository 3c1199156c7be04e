package directory

import (
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestDomainLifecycle(t *testing.T) {
	f := newFixture(t)

	created, err := f.svc.CreateDomain(f.ctx, admin, Domain{Name: "Bücher.Example"})
	if err != nil {
		t.Fatal(err)
	}
	want := Domain{Name: "xn--bcher-kva.example", UnicodeName: "bücher.example", UnknownRecipients: UnknownBounce,
		Meta: Meta{Version: 1, CreatedAt: t0, UpdatedAt: t0}}
	if created != want {
		t.Errorf("created %+v, want %+v", created, want)
	}

	for _, name := range []string{"xn--bcher-kva.example", "bücher.example", "BÜCHER.EXAMPLE."} {
		got, err := f.svc.Domain(f.ctx, auditor, name)
		if err != nil || got != want {
			t.Errorf("Domain(%q) = %+v, %v; want %+v", name, got, err, want)
		}
	}

	f.now = t0.Add(time.Hour)
	updated, err := f.svc.UpdateDomain(f.ctx, admin, "bücher.example", []byte(`{"unknownRecipients":"drop","version":99,"createdAt":"2000-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	want.UnknownRecipients, want.Version, want.UpdatedAt = UnknownDrop, 2, f.now
	if updated != want {
		t.Errorf("updated %+v, want %+v (read-only fields ignored)", updated, want)
	}

	list, next, err := f.svc.Domains(f.ctx, auditor, Page{})
	if err != nil || len(list) != 1 || next != "" || list[0] != want {
		t.Errorf("Domains() = %+v, %q, %v; want the one domain", list, next, err)
	}

	if err := f.svc.DeleteDomain(f.ctx, admin, "xn--bcher-kva.example"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Domain(f.ctx, admin, "bücher.example")
	wantKind(t, err, fault.NotFound)
}

func TestDomainErrors(t *testing.T) {
	tests := []struct {
		name  string
		do    func(f *fixture) error
		want  fault.Kind
		field string
	}{
		{"create twice", func(f *fixture) error {
			_, err := f.svc.CreateDomain(f.ctx, admin, Domain{Name: "EXAMPLE.com"})
			return err
		}, fault.Conflict, ""},
		{"create by an auditor", func(f *fixture) error {
			_, err := f.svc.CreateDomain(f.ctx, auditor, Domain{Name: "other.example"})
			return err
		}, fault.Forbidden, ""},
		{"read by an employee", func(f *fixture) error {
			_, err := f.svc.Domain(f.ctx, employee("ana@example.com"), "example.com")
			return err
		}, fault.Forbidden, ""},
		{"list by a group manager", func(f *fixture) error {
			_, _, err := f.svc.Domains(f.ctx, manager("boss@example.com"), Page{})
			return err
		}, fault.Forbidden, ""},
		{"read an invalid name", func(f *fixture) error {
			_, err := f.svc.Domain(f.ctx, admin, "localhost")
			return err
		}, fault.NotFound, ""},
		{"list with a limit over 1000", func(f *fixture) error {
			_, _, err := f.svc.Domains(f.ctx, admin, Page{Limit: 1001})
			return err
		}, fault.Invalid, "limit"},
		{"rename", func(f *fixture) error {
			_, err := f.svc.UpdateDomain(f.ctx, admin, "example.com", []byte(`{"name":"example.org"}`))
			return err
		}, fault.Invalid, "name"},
		{"patch with an unknown field", func(f *fixture) error {
			_, err := f.svc.UpdateDomain(f.ctx, admin, "example.com", []byte(`{"colour":"red"}`))
			return err
		}, fault.Invalid, "colour"},
		{"update a missing domain", func(f *fixture) error {
			_, err := f.svc.UpdateDomain(f.ctx, admin, "missing.example", []byte(`{}`))
			return err
		}, fault.NotFound, ""},
		{"catch-all on the domain being created", func(f *fixture) error {
			_, err := f.svc.CreateDomain(f.ctx, admin, Domain{Name: "new.example", UnknownRecipients: UnknownCatchAll, CatchAll: "inbox@new.example"})
			return err
		}, fault.Invalid, "catchAll"},
		{"catch-all on a served domain that nobody owns", func(f *fixture) error {
			_, err := f.svc.UpdateDomain(f.ctx, admin, "example.com", []byte(`{"unknownRecipients":"catch-all","catchAll":"nobody@example.com"}`))
			return err
		}, fault.Invalid, "catchAll"},
		{"catch-all on a served domain, owned", func(f *fixture) error {
			_, err := f.svc.UpdateDomain(f.ctx, admin, "example.com", []byte(`{"unknownRecipients":"catch-all","catchAll":"ana@example.com"}`))
			return err
		}, noErr, ""},
		{"catch-all outside Mailroom", func(f *fixture) error {
			_, err := f.svc.CreateDomain(f.ctx, admin, Domain{Name: "new.example", UnknownRecipients: UnknownCatchAll, CatchAll: "inbox@elsewhere.example"})
			return err
		}, noErr, ""},
		{"delete a domain with a mailbox", func(f *fixture) error { return f.svc.DeleteDomain(f.ctx, admin, "example.com") }, fault.Conflict, ""},
		{"delete a domain with an alias only", func(f *fixture) error { return f.svc.DeleteDomain(f.ctx, admin, "aliases.example") }, fault.Conflict, ""},
		{"delete a domain with a group address only", func(f *fixture) error { return f.svc.DeleteDomain(f.ctx, admin, "groups.example") }, fault.Conflict, ""},
		{"delete a missing domain", func(f *fixture) error { return f.svc.DeleteDomain(f.ctx, admin, "missing.example") }, fault.NotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.domain("example.com")
			f.domain("aliases.example")
			f.domain("groups.example")
			f.mailboxes("ana@example.com")
			f.alias("ana@aliases.example", "ana@example.com")
			f.group(Group{Name: "Sales", Addresses: []string{"sales@groups.example"}})
			err := tt.do(f)
			wantKind(t, err, tt.want)
			if tt.field != "" {
				wantField(t, err, tt.field)
			}
		})
	}
}

func TestDeleteDomainOnceEmptied(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	f.mailboxes("ana@example.com")
	if err := f.svc.DeleteMailbox(f.ctx, admin, "ana@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteDomain(f.ctx, admin, "example.com"); err != nil {
		t.Errorf("DeleteDomain after its last mailbox went: %v", err)
	}
}

package directory

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
)

// fieldCase is one input to a normaliser and the field its error must name ("" for none).
type fieldCase[T any] struct {
	name  string
	in    T
	field string
}

func runFieldCases[T any](t *testing.T, cases []fieldCase[T], normalize func(*T) error) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.in
			err := normalize(&v)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				return
			}
			if !fault.Is(err, fault.Invalid) {
				t.Fatalf("error = %v, want kind invalid", err)
			}
			if got := fault.FieldOf(err); got != tt.field {
				t.Errorf("field = %q, want %q (error %v)", got, tt.field, err)
			}
		})
	}
}

func TestNormalizeDomainFields(t *testing.T) {
	runFieldCases(t, []fieldCase[Domain]{
		{"minimal", Domain{Name: "example.com"}, ""},
		{"drop", Domain{Name: "example.com", UnknownRecipients: UnknownDrop}, ""},
		{"catch-all with an address", Domain{Name: "example.com", UnknownRecipients: UnknownCatchAll, CatchAll: "inbox@example.com"}, ""},
		{"bad name", Domain{Name: "localhost"}, "name"},
		{"empty name", Domain{}, "name"},
		{"unknown policy", Domain{Name: "example.com", UnknownRecipients: "forward"}, "unknownRecipients"},
		{"catch-all without an address", Domain{Name: "example.com", UnknownRecipients: UnknownCatchAll}, "catchAll"},
		{"bad catch-all address", Domain{Name: "example.com", UnknownRecipients: UnknownCatchAll, CatchAll: "inbox"}, "catchAll"},
	}, func(d *Domain) error { return normalizeDomain("test", d) })

	t.Run("defaults and forms", func(t *testing.T) {
		d := Domain{Name: "Bücher.Example", CatchAll: "Inbox@Bücher.Example"}
		if err := normalizeDomain("test", &d); err != nil {
			t.Fatal(err)
		}
		want := Domain{Name: "xn--bcher-kva.example", UnicodeName: "bücher.example", UnknownRecipients: UnknownBounce, CatchAll: "inbox@xn--bcher-kva.example"}
		if d != want {
			t.Errorf("got %+v, want %+v", d, want)
		}
	})
}

func TestNormalizeMailboxFields(t *testing.T) {
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("f%d@other.example", i)
	}
	runFieldCases(t, []fieldCase[Mailbox]{
		{"minimal", Mailbox{Address: "ana@example.com"}, ""},
		{"everything", Mailbox{Address: "ana@example.com", DisplayName: "Ana Lim", ForwardTo: []string{"ana.lim@corp.example"},
			Status: StatusSuspended, Manager: "boss@example.com", Locale: "ms-MY", TimeZone: "Asia/Kuala_Lumpur"}, ""},
		{"ten forwarding addresses", Mailbox{Address: "ana@example.com", ForwardTo: eleven[:10]}, ""},
		{"bad address", Mailbox{Address: "ana"}, "address"},
		{"line break in display name (header injection)", Mailbox{Address: "ana@example.com", DisplayName: "Ana\r\nBcc: x@evil.example"}, "displayName"},
		{"tab in display name", Mailbox{Address: "ana@example.com", DisplayName: "Ana\tLim"}, "displayName"},
		{"Unicode line separator in display name", Mailbox{Address: "ana@example.com", DisplayName: "Ana\u2028Lim"}, "displayName"},
		{"invalid UTF-8 in display name", Mailbox{Address: "ana@example.com", DisplayName: "Ana \xff"}, "displayName"},
		{"over-long display name", Mailbox{Address: "ana@example.com", DisplayName: strings.Repeat("é", maxName+1)}, "displayName"},
		{"display name at the limit, counted in characters", Mailbox{Address: "ana@example.com", DisplayName: strings.Repeat("é", maxName)}, ""},
		{"eleven forwarding addresses", Mailbox{Address: "ana@example.com", ForwardTo: eleven}, "forwardTo"},
		{"bad forwarding address", Mailbox{Address: "ana@example.com", ForwardTo: []string{"a@other.example", "nope"}}, "forwardTo.1"},
		{"forwarding address twice", Mailbox{Address: "ana@example.com", ForwardTo: []string{"a@other.example", "A@Other.Example"}}, "forwardTo.1"},
		{"forwarding to itself", Mailbox{Address: "ana@example.com", ForwardTo: []string{"x@other.example", "ANA@example.com"}}, "forwardTo.1"},
		{"unknown status", Mailbox{Address: "ana@example.com", Status: "deleted"}, "status"},
		{"bad manager", Mailbox{Address: "ana@example.com", Manager: "boss"}, "manager"},
		{"managing itself", Mailbox{Address: "ana@example.com", Manager: "Ana@Example.com"}, "manager"},
		{"bad locale", Mailbox{Address: "ana@example.com", Locale: "not a locale"}, "locale"},
		{"bad time zone", Mailbox{Address: "ana@example.com", TimeZone: "Mars/Olympus_Mons"}, "timeZone"},
		{"Local is not a zone", Mailbox{Address: "ana@example.com", TimeZone: "Local"}, "timeZone"},
	}, func(m *Mailbox) error { return normalizeMailbox("test", m) })

	t.Run("defaults", func(t *testing.T) {
		m := Mailbox{Address: "Ana@Example.com", ForwardTo: []string{}}
		if err := normalizeMailbox("test", &m); err != nil {
			t.Fatal(err)
		}
		if m.Address != "ana@example.com" || m.Status != StatusActive || m.Locale != "en" || m.TimeZone != "UTC" || m.ForwardTo != nil {
			t.Errorf("got %+v, want ana@example.com, active, en, UTC, no forwarding", m)
		}
	})
	t.Run("locale in canonical form", func(t *testing.T) {
		m := Mailbox{Address: "ana@example.com", Locale: "ms-my"}
		if err := normalizeMailbox("test", &m); err != nil {
			t.Fatal(err)
		}
		if got, want := m.Locale, "ms-MY"; got != want {
			t.Errorf("Locale = %q, want %q", got, want)
		}
	})
}

func TestNormalizeAliasFields(t *testing.T) {
	runFieldCases(t, []fieldCase[Alias]{
		{"valid", Alias{Address: "info@example.com", Target: "sales@example.com"}, ""},
		{"bad address", Alias{Address: "info", Target: "sales@example.com"}, "address"},
		{"bad target", Alias{Address: "info@example.com", Target: ""}, "target"},
		{"pointing at itself", Alias{Address: "info@example.com", Target: "INFO@example.com"}, "target"},
	}, func(a *Alias) error { return normalizeAlias("test", a) })
}

func TestGroupID(t *testing.T) {
	tests := []struct{ name, want string }{
		{"Sales", "sales"},
		{"Sales & Marketing", "sales-marketing"},
		{"  Sales  APAC ", "sales-apac"},
		{"team_a", "team-a"},
		{"2026 Launch!", "2026-launch"},
		{"---", ""},
		{"", ""},
		// Letters outside ASCII are left out; give an id for such names.
		{"営業", ""},
		{strings.Repeat("ab", 40), strings.Repeat("ab", 32)},
		{strings.Repeat("a", 63) + " b", strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := GroupID(tt.name)
			if got != tt.want {
				t.Errorf("GroupID(%q) = %q, want %q", tt.name, got, tt.want)
			}
			if got != "" && !groupID.MatchString(got) {
				t.Errorf("GroupID(%q) = %q, which is not a valid id", tt.name, got)
			}
		})
	}
}

func TestNormalizeGroupFields(t *testing.T) {
	many := func(n int, format string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(format, i)
		}
		return out
	}
	runFieldCases(t, []fieldCase[Group]{
		{"minimal", Group{Name: "Sales"}, ""},
		{"everything", Group{ID: "sales", Name: "Sales", Description: "APAC and EU", Type: "department",
			Addresses: []string{"sales@example.com"}, Owners: []string{"boss@example.com"},
			Posting: Posting{Policy: PostAllowList, Allow: []string{"@partner.example", "x@y.example"}}, Expires: "2027-03-31"}, ""},
		{"missing name", Group{ID: "sales"}, "name"},
		{"blank name", Group{ID: "sales", Name: "   "}, "name"},
		{"line break in name (header injection)", Group{Name: "Sales\nBcc: x@evil.example"}, "name"},
		{"over-long name", Group{Name: strings.Repeat("n", maxName+1)}, "name"},
		{"name without an id in it", Group{Name: "営業"}, "id"},
		{"upper-case id", Group{ID: "Sales", Name: "Sales"}, "id"},
		{"id with a leading hyphen", Group{ID: "-sales", Name: "Sales"}, "id"},
		{"id with an underscore", Group{ID: "sales_apac", Name: "Sales"}, "id"},
		{"id of 65 characters", Group{ID: strings.Repeat("a", 65), Name: "Sales"}, "id"},
		{"id of 64 characters", Group{ID: strings.Repeat("a", 64), Name: "Sales"}, ""},
		{"control character in description", Group{Name: "Sales", Description: "a\x00b"}, "description"},
		{"over-long description", Group{Name: "Sales", Description: strings.Repeat("d", maxDescription+1)}, "description"},
		{"line breaks allowed nowhere, description included", Group{Name: "Sales", Description: "line one\nline two"}, "description"},
		{"unknown type", Group{Name: "Sales", Type: "team"}, "type"},
		{"bad address", Group{Name: "Sales", Addresses: []string{"sales@example.com", "sales"}}, "addresses.1"},
		{"address twice", Group{Name: "Sales", Addresses: []string{"sales@example.com", "SALES@example.com"}}, "addresses.1"},
		{"too many addresses", Group{Name: "Sales", Addresses: many(maxAddresses+1, "s%d@example.com")}, "addresses"},
		{"bad owner", Group{Name: "Sales", Owners: []string{"boss"}}, "owners.0"},
		{"too many owners", Group{Name: "Sales", Owners: many(maxOwners+1, "o%d@example.com")}, "owners"},
		{"unknown posting policy", Group{Name: "Sales", Posting: Posting{Policy: "everyone"}}, "posting.policy"},
		{"allow-list without entries", Group{Name: "Sales", Posting: Posting{Policy: PostAllowList}}, "posting.allow"},
		{"bad allow entry", Group{Name: "Sales", Posting: Posting{Policy: PostAllowList, Allow: []string{"@partner.example", "nope"}}}, "posting.allow.1"},
		{"bad allowed domain", Group{Name: "Sales", Posting: Posting{Policy: PostAllowList, Allow: []string{"@localhost"}}}, "posting.allow.0"},
		{"too many allow entries", Group{Name: "Sales", Posting: Posting{Policy: PostAllowList, Allow: many(maxAllow+1, "a%d@x.example")}}, "posting.allow"},
		{"bad moderator", Group{Name: "Sales", Posting: Posting{Policy: PostModerated, Moderators: []string{"mod"}}}, "posting.moderators.0"},
		{"moderated without moderators or owners", Group{Name: "Sales", Posting: Posting{Policy: PostModerated}}, "posting.moderators"},
		{"moderated by the owners", Group{Name: "Sales", Owners: []string{"boss@example.com"}, Posting: Posting{Policy: PostModerated}}, ""},
		{"bad expiry", Group{Name: "Sales", Expires: "31/03/2027"}, "expires"},
		{"expiry with a time", Group{Name: "Sales", Expires: "2027-03-31T00:00:00Z"}, "expires"},
		{"impossible date", Group{Name: "Sales", Expires: "2027-02-30"}, "expires"},
	}, func(g *Group) error { return normalizeGroup("test", g) })

	t.Run("defaults", func(t *testing.T) {
		g := Group{Name: " Sales Team "}
		if err := normalizeGroup("test", &g); err != nil {
			t.Fatal(err)
		}
		if g.ID != "sales-team" || g.Name != "Sales Team" || g.Type != "other" || g.Posting.Policy != PostOrganisation {
			t.Errorf("got %+v, want id sales-team, type other, posting organisation", g)
		}
		if g.Addresses != nil || g.Owners != nil || g.Posting.Allow != nil || g.Posting.Moderators != nil {
			t.Errorf("got %+v, want empty lists as nil", g)
		}
	})
	t.Run("allow entries normalised and deduplicated", func(t *testing.T) {
		g := Group{Name: "Sales", Posting: Posting{Policy: PostAllowList, Allow: []string{"@Bücher.Example", "X@Y.example", "x@y.example", " @bücher.example"}}}
		if err := normalizeGroup("test", &g); err != nil {
			t.Fatal(err)
		}
		if got, want := g.Posting.Allow, []string{"@xn--bcher-kva.example", "x@y.example"}; !slices.Equal(got, want) {
			t.Errorf("Allow = %q, want %q", got, want)
		}
	})
}

func TestNormalizeMemberFields(t *testing.T) {
	runFieldCases(t, []fieldCase[Member]{
		{"mailbox", Member{Kind: KindMailbox, Address: "Ana@Example.com"}, ""},
		{"external", Member{Kind: KindExternal, Address: "p@partner.example"}, ""},
		{"group", Member{Kind: KindGroup, Group: "sales-apac"}, ""},
		{"no kind", Member{Address: "ana@example.com"}, "kind"},
		{"unknown kind", Member{Kind: "alias", Address: "info@example.com"}, "kind"},
		{"mailbox with a group", Member{Kind: KindMailbox, Address: "ana@example.com", Group: "sales"}, "group"},
		{"mailbox with a bad address", Member{Kind: KindMailbox, Address: "ana"}, "address"},
		{"external without an address", Member{Kind: KindExternal}, "address"},
		{"group with an address", Member{Kind: KindGroup, Group: "sales", Address: "sales@example.com"}, "address"},
		{"group with a bad id", Member{Kind: KindGroup, Group: "Sales"}, "group"},
		{"group without an id", Member{Kind: KindGroup}, "group"},
	}, func(m *Member) error { return normalizeMember("test", m) })
}

func TestParseMemberRef(t *testing.T) {
	tests := []struct {
		ref  string
		want Member // zero when the reference is refused
	}{
		{"mailbox:Ana@Example.com", Member{Kind: KindMailbox, Address: "ana@example.com"}},
		{"external:p@partner.example", Member{Kind: KindExternal, Address: "p@partner.example"}},
		{"group:sales-apac", Member{Kind: KindGroup, Group: "sales-apac"}},
		{"ana@example.com", Member{}},
		{"alias:info@example.com", Member{}},
		{"group:Sales", Member{}},
		{"mailbox:", Member{}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := ParseMemberRef("test", tt.ref)
			if tt.want.Kind == "" {
				if got := fault.FieldOf(err); got != "member" {
					t.Errorf("ParseMemberRef(%q) = %+v, %v; want an error on field member", tt.ref, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tt.want.Kind || got.Address != tt.want.Address || got.Group != tt.want.Group {
				t.Errorf("ParseMemberRef(%q) = %+v, want %+v", tt.ref, got, tt.want)
			}
			if got.Ref() != strings.ToLower(tt.ref) {
				t.Errorf("Ref() = %q, want %q", got.Ref(), strings.ToLower(tt.ref))
			}
		})
	}
}

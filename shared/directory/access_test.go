package directory

import (
	"context"
	"slices"
	"testing"

	"github.com/mailroom/mailroom/shared/fault"
)

func TestPrincipalFromClaims(t *testing.T) {
	const claim = "mailroom:roles"
	tests := []struct {
		name       string
		claims     map[string]string
		scopes     []string
		wantRoles  []string
		wantScopes []string
		wantHas    bool
	}{
		{"JSON array", map[string]string{"sub": "u1", claim: `["admin","auditor"]`}, nil, []string{"admin", "auditor"}, nil, false},
		{"API Gateway's rendering of an array", map[string]string{"sub": "u1", claim: "[admin auditor]"}, nil, []string{"admin", "auditor"}, nil, false},
		{"comma-separated", map[string]string{"sub": "u1", claim: "admin,auditor"}, nil, []string{"admin", "auditor"}, nil, false},
		{"comma and space separated", map[string]string{"sub": "u1", claim: "admin, auditor"}, nil, []string{"admin", "auditor"}, nil, false},
		{"space-separated", map[string]string{"sub": "u1", claim: "admin auditor"}, nil, []string{"admin", "auditor"}, nil, false},
		{"single role", map[string]string{"sub": "u1", claim: "employee"}, nil, []string{"employee"}, nil, false},
		{"unknown roles dropped", map[string]string{"sub": "u1", claim: `["root","group-manager","Admin"]`}, nil, []string{"group-manager"}, nil, false},
		{"duplicates dropped", map[string]string{"sub": "u1", claim: "admin admin"}, nil, []string{"admin"}, nil, false},
		{"no roles claim", map[string]string{"sub": "u1"}, nil, nil, nil, false},
		{"scope claim", map[string]string{"sub": "u1", claim: "admin", "scope": "openid mailroom/read"}, nil, []string{"admin"}, []string{"openid", "mailroom/read"}, true},
		{"empty scope claim still narrows", map[string]string{"sub": "u1", claim: "admin", "scope": ""}, nil, []string{"admin"}, nil, true},
		{"scopes from the authorizer", map[string]string{"sub": "u1", claim: "admin"}, []string{"mailroom/write"}, []string{"admin"}, []string{"mailroom/write"}, true},
		{"scopes from both, once each", map[string]string{"sub": "u1", claim: "admin", "scope": "mailroom/read"}, []string{"mailroom/read", "mailroom/write"}, []string{"admin"}, []string{"mailroom/read", "mailroom/write"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PrincipalFromClaims(tt.claims, tt.scopes, claim)
			if err != nil {
				t.Fatalf("PrincipalFromClaims() error = %v", err)
			}
			if !slices.Equal(got.Roles, tt.wantRoles) {
				t.Errorf("Roles = %q, want %q", got.Roles, tt.wantRoles)
			}
			if !slices.Equal(got.Scopes, tt.wantScopes) {
				t.Errorf("Scopes = %q, want %q", got.Scopes, tt.wantScopes)
			}
			if got.HasScopes != tt.wantHas {
				t.Errorf("HasScopes = %v, want %v", got.HasScopes, tt.wantHas)
			}
		})
	}
}

func TestPrincipalFromClaimsIdentity(t *testing.T) {
	t.Run("email lower-cased and trimmed", func(t *testing.T) {
		p, err := PrincipalFromClaims(map[string]string{"sub": "u1", "email": " Ana@Example.COM "}, nil, "roles")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Email, "ana@example.com"; got != want {
			t.Errorf("Email = %q, want %q", got, want)
		}
	})
	t.Run("email with a Unicode domain in the stored form", func(t *testing.T) {
		p, err := PrincipalFromClaims(map[string]string{"sub": "u1", "email": "Anna@Bücher.Example"}, nil, "roles")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Email, "anna@xn--bcher-kva.example"; got != want {
			t.Errorf("Email = %q, want %q", got, want)
		}
	})
	t.Run("Cognito groups claim", func(t *testing.T) {
		p, err := PrincipalFromClaims(map[string]string{"sub": "u1", "cognito:groups": "[auditor]"}, nil, "cognito:groups")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Roles, []string{"auditor"}; !slices.Equal(got, want) {
			t.Errorf("Roles = %q, want %q", got, want)
		}
	})
	t.Run("missing sub is unauthenticated", func(t *testing.T) {
		_, err := PrincipalFromClaims(map[string]string{"email": "ana@example.com", "roles": "admin"}, nil, "roles")
		if got, want := fault.KindOf(err), fault.Unauthenticated; got != want {
			t.Errorf("KindOf() = %v, want %v", got, want)
		}
	})
	t.Run("Me is the caller as given", func(t *testing.T) {
		p := Principal{Subject: "u1", Email: "ana@example.com", Roles: []string{RoleEmployee}}
		if got := (&Service{}).Me(Call{Principal: p}); got.Subject != "u1" || got.Email != p.Email || !slices.Equal(got.Roles, p.Roles) {
			t.Errorf("Me() = %+v, want %+v", got, p)
		}
	})
	t.Run("actor has an empty role list, not null", func(t *testing.T) {
		a := Principal{Subject: "u1"}.Actor()
		if a.Roles == nil {
			t.Error("Actor().Roles = nil, want empty")
		}
	})
}

// TestScopes checks that a token's scopes narrow what its roles allow, and that a token without a
// scope claim (an ID token) is judged by role alone.
func TestScopes(t *testing.T) {
	f := newFixture(t)
	f.domain("example.com")
	tests := []struct {
		name      string
		p         Principal
		wantRead  fault.Kind // noErr when it succeeds
		wantWrite fault.Kind
	}{
		{"no scope claim: roles only", Principal{Subject: "a", Roles: []string{RoleAdmin}}, noErr, noErr},
		{"read scope only: reads allowed, writes forbidden", Principal{Subject: "a", Roles: []string{RoleAdmin}, Scopes: []string{ScopeRead}, HasScopes: true}, noErr, fault.Forbidden},
		{"write scope only: writes allowed, reads forbidden", Principal{Subject: "a", Roles: []string{RoleAdmin}, Scopes: []string{ScopeWrite}, HasScopes: true}, fault.Forbidden, noErr},
		{"both scopes", Principal{Subject: "a", Roles: []string{RoleAdmin}, Scopes: []string{ScopeRead, ScopeWrite}, HasScopes: true}, noErr, noErr},
		{"empty scope claim: nothing", Principal{Subject: "a", Roles: []string{RoleAdmin}, HasScopes: true}, fault.Forbidden, fault.Forbidden},
		{"scopes do not grant what roles do not", Principal{Subject: "a", Roles: []string{RoleAuditor}, Scopes: []string{ScopeRead, ScopeWrite}, HasScopes: true}, noErr, fault.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Call{Principal: tt.p, RequestID: "r"}
			_, err := f.svc.Domain(context.Background(), c, "example.com")
			if got := kindOf(err); got != tt.wantRead {
				t.Errorf("read: got %s, want %s (error %v)", kindName(got), kindName(tt.wantRead), err)
			}
			_, err = f.svc.UpdateDomain(context.Background(), c, "example.com", []byte(`{"unknownRecipients":"drop"}`))
			if got := kindOf(err); got != tt.wantWrite {
				t.Errorf("write: got %s, want %s (error %v)", kindName(got), kindName(tt.wantWrite), err)
			}
		})
	}
}

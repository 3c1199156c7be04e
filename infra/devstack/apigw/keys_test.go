package apigw

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	keysOnce            sync.Once
	sharedKeys, another *Keys
)

// testKeys returns the keys most tests sign with, and a second pair with the same kid, made
// once: RSA key generation is the slowest thing these tests do.
func testKeys(t *testing.T) (*Keys, *Keys) {
	t.Helper()
	keysOnce.Do(func() {
		a, err := rsa.GenerateKey(rand.Reader, keyBits)
		if err != nil {
			panic(err)
		}
		b, err := rsa.GenerateKey(rand.Reader, keyBits)
		if err != nil {
			panic(err)
		}
		sharedKeys = newKeys(a)
		another = newKeys(b)
		another.kid = sharedKeys.kid // so only the signature can tell them apart
	})
	return sharedKeys, another
}

func TestLoadOrCreateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("%s mode = %v, want %v", KeyFile, got, want)
	}
	again, err := LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.KeyID(), first.KeyID(); got != want {
		t.Errorf("second load has kid %q, want the first's %q", got, want)
	}
	if !again.private.Equal(first.private) {
		t.Error("second load returned a different key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state directory holds %d files, want only %s", len(entries), KeyFile)
	}
}

func TestLoadOrCreateKeysRefusesWhatIsNotAKey(t *testing.T) {
	tests := []struct{ name, content string }{
		{"not PEM", "hello"},
		{"a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{"broken key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, KeyFile), []byte(tt.content), 0o600)
			if _, err := LoadOrCreateKeys(dir); err == nil || !strings.Contains(err.Error(), KeyFile) {
				t.Errorf("error = %v, want one naming %s", err, KeyFile)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	keys, _ := testKeys(t)
	at := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		claims Claims
		want   map[string]any
	}{
		{
			"defaults",
			Claims{Subject: "local:admin", Roles: []string{"admin"}, IssuedAt: at},
			map[string]any{
				"sub": "local:admin", "mailroom:roles": []any{"admin"},
				"iss": DefaultIssuer, "aud": DefaultAudience,
				"iat": float64(at.Unix()), "exp": float64(at.Add(12 * time.Hour).Unix()),
			},
		},
		{
			"everything",
			Claims{
				Subject: "ana", Email: "ana@example.com", Roles: []string{"group-manager", "employee"},
				Scope: "mailroom/read mailroom/write", Issuer: "iss", Audience: "aud",
				IssuedAt: at, NotBefore: at.Add(time.Minute), TTL: time.Hour,
			},
			map[string]any{
				"sub": "ana", "email": "ana@example.com", "mailroom:roles": []any{"group-manager", "employee"},
				"scope": "mailroom/read mailroom/write", "iss": "iss", "aud": "aud",
				"iat": float64(at.Unix()), "nbf": float64(at.Add(time.Minute).Unix()), "exp": float64(at.Add(time.Hour).Unix()),
			},
		},
		{
			"no roles is an empty list, not null",
			Claims{Subject: "x", IssuedAt: at},
			map[string]any{
				"sub": "x", "mailroom:roles": []any{}, "iss": DefaultIssuer, "aud": DefaultAudience,
				"iat": float64(at.Unix()), "exp": float64(at.Add(12 * time.Hour).Unix()),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := keys.Issue(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			head, payload := decodeParts(t, token)
			if got, want := head, map[string]any{"alg": "RS256", "kid": keys.KeyID(), "typ": "JWT"}; !reflect.DeepEqual(got, want) {
				t.Errorf("header = %v, want %v", got, want)
			}
			if !reflect.DeepEqual(payload, tt.want) {
				t.Errorf("payload = %v\nwant      %v", payload, tt.want)
			}
		})
	}
	if _, err := keys.Issue(Claims{Roles: []string{"admin"}}); err == nil {
		t.Error("Issue without a subject succeeded")
	}
}

// TestJWKSVerifiesTokens checks the published key set from the outside, as an authorizer would
// use it: the key it lists verifies what Issue signs.
func TestJWKSVerifiesTokens(t *testing.T) {
	keys, _ := testKeys(t)
	var set struct {
		Keys []struct{ Kty, Use, Alg, Kid, N, E string }
	}
	if err := json.Unmarshal(keys.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS lists %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || k.Kid != keys.KeyID() {
		t.Errorf("key = %+v", k)
	}
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	token, err := keys.Issue(Claims{Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
		t.Errorf("the JWKS key does not verify an issued token: %v", err)
	}
}

func decodeParts(t *testing.T, token string) (head, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, out := range []*map[string]any{&head, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return head, payload
}

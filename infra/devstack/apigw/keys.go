package apigw

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mailroom/mailroom/shared/fault"
)

const (
	// DefaultIssuer and DefaultAudience are the iss and aud of development tokens, and what the
	// front accepts unless told otherwise.
	DefaultIssuer   = "mailroom-local"
	DefaultAudience = "mailroom-admin"

	// KeyFile is the private key's file in the state directory.
	KeyFile = "devtoken.pem"
	// DefaultTTL is how long a development token lasts: a working day.
	DefaultTTL = 12 * time.Hour

	keyBits = 2048
)

// Keys signs development tokens and verifies them as the JWT authorizer would verify tokens
// against the keys its issuer publishes.
type Keys struct {
	private *rsa.PrivateKey
	kid     string
}

// LoadOrCreateKeys reads the key in dir/devtoken.pem, creating dir and the key the first time.
// `mailroom dev` and `mailroom login` both call it and may race on a fresh checkout; the key is
// written whole to a temporary file and linked into place, so the loser reads the winner's key.
func LoadOrCreateKeys(dir string) (*Keys, error) {
	const op = "apigw.LoadOrCreateKeys"
	path := filepath.Join(dir, KeyFile)
	k, err := readKeys(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	tmp, err := os.CreateTemp(dir, KeyFile+".*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already makes the file 0600; Chmod says so for whoever reads this later.
	err = errors.Join(tmp.Chmod(0o600), pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}), tmp.Close())
	if err != nil {
		return nil, fmt.Errorf("%s: write %s: %w", op, tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return readKeys(path)
}

func readKeys(path string) (*Keys, error) {
	const op = "apigw.LoadOrCreateKeys"
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fault.New(fault.Invalid, op, "%s is not a PEM private key; delete it to get a new one", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, &fault.Error{Kind: fault.Invalid, Op: op, Message: path, Err: err}
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok || key.N.BitLen() < keyBits {
		return nil, fault.New(fault.Invalid, op, "%s is not an RSA key of at least %d bits; delete it to get a new one", path, keyBits)
	}
	return newKeys(key), nil
}

func newKeys(key *rsa.PrivateKey) *Keys {
	return &Keys{private: key, kid: thumbprint(&key.PublicKey)}
}

// thumbprint is the key's RFC 7638 JWK thumbprint: a kid that changes only when the key does.
func thumbprint(pub *rsa.PublicKey) string {
	// RFC 7638 fixes the members, their order and the absence of whitespace.
	canon := fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64(big.NewInt(int64(pub.E)).Bytes()), b64(pub.N.Bytes()))
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// KeyID is the kid the tokens carry and the JWKS lists.
func (k *Keys) KeyID() string { return k.kid }

// JWKS is the public key as a JSON Web Key Set, the document an authorizer's issuer publishes at
// its jwks_uri.
func (k *Keys) JWKS() []byte {
	pub := k.private.PublicKey
	b, _ := json.Marshal(jwks{Keys: []jwk{{
		Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.kid,
		N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	return b
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// Claims are what a development token says about its bearer.
type Claims struct {
	Subject string
	Email   string // omitted when empty
	Roles   []string
	// Scope is the space-separated scope claim; empty leaves the claim out, which the admin API
	// reads as an ID token judged by role alone.
	Scope string

	Issuer, Audience string    // default DefaultIssuer, DefaultAudience
	IssuedAt         time.Time // default now
	NotBefore        time.Time // omitted when zero
	TTL              time.Duration
}

// RolesClaim is the claim that carries Mailroom roles in development tokens.
const RolesClaim = "mailroom:roles"

// Issue signs a token with c's claims, RS256 with the key's kid in the header as the JWT
// authorizer requires.
func (k *Keys) Issue(c Claims) (string, error) {
	const op = "apigw.Issue"
	switch {
	case c.Subject == "":
		return "", fault.InvalidField(op, "Subject", "required")
	case c.TTL < 0:
		return "", fault.InvalidField(op, "TTL", "must not be negative")
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	// aud is a plain string, not jwt's ClaimStrings: that type writes a one-element array, which
	// API Gateway would hand the function as "[mailroom-admin]".
	mc := jwt.MapClaims{
		"sub":      c.Subject,
		RolesClaim: roles,
		"iss":      or(c.Issuer, DefaultIssuer),
		"aud":      or(c.Audience, DefaultAudience),
		"iat":      c.IssuedAt.Unix(),
		"exp":      c.IssuedAt.Add(c.TTL).Unix(),
	}
	if c.Email != "" {
		mc["email"] = c.Email
	}
	if c.Scope != "" {
		mc["scope"] = c.Scope
	}
	if !c.NotBefore.IsZero() {
		mc["nbf"] = c.NotBefore.Unix()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, mc)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.private)
	if err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	return s, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

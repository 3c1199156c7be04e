package apigw

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
)

// authorizer checks tokens the way an HTTP API's JWT authorizer does, with the local keys as the
// issuer's JWKS.
type authorizer struct {
	keys     *Keys
	issuer   string
	audience string
	now      func() time.Time
}

// denial is why a request was refused. description goes into the www-authenticate header as API
// Gateway's does; only "the token does not have a valid audience" is worded as AWS documents it
// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-jwt.html),
// the others are ours.
type denial struct{ description string }

func (d *denial) Error() string { return d.description }

// challenge is the www-authenticate value for d, in the documented shape. A request without a
// token gets the bare scheme, as RFC 6750 §3.1 asks when no credentials were offered.
func (d *denial) challenge() string {
	if d.description == "" {
		return "Bearer"
	}
	return fmt.Sprintf(`Bearer scope="" error="invalid_token" error_description=%q`, d.description)
}

var errNoToken = &denial{}

// authorize verifies the Authorization header's token and returns what API Gateway puts under
// requestContext.authorizer.
func (a *authorizer) authorize(header string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, error) {
	// The identity source may hold the token alone or prefixed with "Bearer"; API Gateway takes
	// both.
	token := strings.TrimSpace(header)
	if scheme, rest, _ := strings.Cut(token, " "); strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	if token == "" {
		return nil, errNoToken
	}
	p := jwt.NewParser(
		// API Gateway accepts only RSA signatures; the local key signs RS256 and nothing else.
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithTimeFunc(a.now),
		jwt.WithExpirationRequired(),
		jwt.WithJSONNumber(),
	)
	claims := jwt.MapClaims{}
	_, err := p.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		// The authorizer picks the JWKS key by kid; a token without one matches none.
		if kid, _ := t.Header["kid"].(string); kid != a.keys.kid {
			return nil, errors.New("no key matches the token's kid")
		}
		return &a.keys.private.PublicKey, nil
	})
	if err != nil {
		return nil, describe(err)
	}
	// Checked here rather than by the parser, which reports a missing iss as it does a
	// missing exp.
	if iss, _ := claims.GetIssuer(); iss != a.issuer {
		return nil, &denial{"the token does not have a valid issuer"}
	}
	if !a.audienceMatches(claims) {
		return nil, &denial{"the token does not have a valid audience"}
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
			Claims: renderClaims(claims),
			Scopes: scopes(claims),
		},
	}, nil
}

// audienceMatches applies API Gateway's rule: aud must name the configured audience; client_id
// is checked instead only when the token has no aud (Cognito access tokens).
func (a *authorizer) audienceMatches(c jwt.MapClaims) bool {
	if _, ok := c["aud"]; !ok {
		id, _ := c["client_id"].(string)
		return id == a.audience
	}
	aud, err := c.GetAudience()
	if err != nil {
		return false
	}
	for _, s := range aud {
		if s == a.audience {
			return true
		}
	}
	return false
}

func describe(err error) *denial {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return &denial{"the token has expired"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &denial{"the token has no expiry"}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &denial{"the token is not valid yet"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return &denial{"the token's signature could not be verified with the issuer's keys"}
	default:
		return &denial{"the token is not a valid JWT"}
	}
}

// renderClaims turns the token's claims into the strings API Gateway passes on. The HTTP API's
// JWT authorizer hands every claim over as a string, formatted the way Go's fmt formats decoded
// JSON (json.Number for numbers), as seen in events it sent:
//   - numbers keep their digits: "exp": "1612061676"
//     (https://github.com/awsdocs/amazon-api-gateway-developer-guide/issues/113);
//   - arrays become space-separated in brackets: "cognito:groups": "[admins auditors]"
//     (https://github.com/aws-solutions-library-samples/guidance-for-claude-code-with-amazon-bedrock/pull/803,
//     and this repository's events/api samples);
//   - objects become "map[key:value]" (https://github.com/aws/aws-lambda-go/issues/570).
//
// AWS documents none of this for HTTP APIs. Booleans print as true and false; null is a guess
// ("<nil>"). The JSON-typed claims of
// https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-jwt-authorizer-claims.html
// are REST APIs' JWT authorizers, not this one.
func renderClaims(c jwt.MapClaims) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// scopes are the token's scope claim split at spaces, the list API Gateway matches a route's
// authorizationScopes against.
func scopes(c jwt.MapClaims) []string {
	s, _ := c["scope"].(string)
	return strings.Fields(s)
}

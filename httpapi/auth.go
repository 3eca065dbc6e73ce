package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"boxoffice"
)

// Role is what a token's subject may do.
type Role string

const (
	RoleBuyer     Role = "buyer"
	RoleOrganiser Role = "organiser"
	RoleAdmin     Role = "admin"
)

// Principal is the authenticated caller.
type Principal struct {
	Subject string
	Role    Role
}

type claims struct {
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

// MintToken signs an HS256 token for subject with role, valid for ttl.
func MintToken(secret []byte, subject string, role Role, ttl time.Duration) (string, error) {
	if !boxoffice.ValidID(subject) {
		return "", fmt.Errorf("subject %q must match [A-Za-z0-9._-]{1,64}", subject)
	}
	switch role {
	case RoleBuyer, RoleOrganiser, RoleAdmin:
	default:
		return "", fmt.Errorf("role %q must be buyer, organiser or admin", role)
	}
	now := time.Now()
	c := claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

var bearer = []byte("Bearer ")

// tokenCacheMax bounds the verified tokens remembered; the cache is emptied
// when it is full.
const tokenCacheMax = 100_000

// tokenCache remembers verified tokens until they expire: a buyer sends the
// same token with every request, and verifying it (base64, JSON, HMAC) costs
// more than the rest of a hold's HTTP handling. A forwarded request is
// verified on the follower and again on the leader; both hit the cache.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	p   Principal
	exp time.Time
}

func (c *tokenCache) get(tok string, now time.Time) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tok]
	if !ok || !now.Before(e.exp) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *tokenCache) put(tok string, p Principal, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = make(map[string]cachedToken)
	}
	c.m[tok] = cachedToken{p: p, exp: exp}
}

// authenticate verifies the request's bearer token.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (Principal, error) {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(h) == 0 {
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "an Authorization: Bearer token is required")
	}
	if !bytes.HasPrefix(h, bearer) {
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "the Authorization header must be 'Bearer <token>'")
	}
	raw := h[len(bearer):]
	now := time.Now()
	if p, ok := s.tokens.get(string(raw), now); ok {
		return p, nil
	}
	var c claims
	_, err := jwt.ParseWithClaims(string(raw), &c, func(*jwt.Token) (any, error) {
		return s.cfg.AuthSecret, nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		detail := "invalid token"
		if errors.Is(err, jwt.ErrTokenExpired) {
			detail = "token expired"
		}
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "%s", detail)
	}
	if !boxoffice.ValidID(c.Subject) {
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "token subject is not a valid id")
	}
	switch c.Role {
	case RoleBuyer, RoleOrganiser, RoleAdmin:
	default:
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "token role %q is unknown", c.Role)
	}
	p := Principal{Subject: c.Subject, Role: c.Role}
	s.tokens.put(string(raw), p, c.ExpiresAt.Time)
	return p, nil
}

// require authenticates and checks the caller has one of roles.
func (s *Server) require(ctx *fasthttp.RequestCtx, roles ...Role) (Principal, error) {
	p, err := s.authenticate(ctx)
	if err != nil {
		return p, err
	}
	for _, r := range roles {
		if p.Role == r {
			return p, nil
		}
	}
	return p, boxoffice.Errorf(boxoffice.CodeForbidden, "role %s may not do this", p.Role)
}

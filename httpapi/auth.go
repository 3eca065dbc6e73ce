package httpapi

import (
	"bytes"
	"errors"
	"fmt"
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

// authenticate verifies the request's bearer token.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (Principal, error) {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(h) == 0 {
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "an Authorization: Bearer token is required")
	}
	if !bytes.HasPrefix(h, bearer) {
		return Principal{}, boxoffice.Errorf(boxoffice.CodeUnauthorized, "the Authorization header must be 'Bearer <token>'")
	}
	var c claims
	_, err := jwt.ParseWithClaims(string(h[len(bearer):]), &c, func(*jwt.Token) (any, error) {
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
	return Principal{Subject: c.Subject, Role: c.Role}, nil
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

package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

// A pass binds event, buyer and expiry under a key derived from the shared
// secret: changing any of them, signing with another secret, presenting a
// place token or a bearer token as a pass, or presenting it after its
// expiry is refused with admission_required, and each refusal names why.
func TestPassCannotBeForged(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s := newSigner(secret)
	now := time.UnixMilli(1_000_000)
	exp := now.Add(time.Minute).UnixMilli()
	good := s.sign(kindPass, "e1", "u1", exp)

	reason, err := s.checkPass(good, "e1", "u1", now)
	require.NoError(t, err)
	require.Empty(t, reason)

	other := newSigner([]byte("another secret, of the same size!"))
	bearer, err := MintToken(secret, "u1", RoleBuyer, time.Hour)
	require.NoError(t, err)
	// Flip one character of the signature, and of the payload.
	flip := func(tok string, at int) string {
		b := []byte(tok)
		if b[at] == 'A' {
			b[at] = 'B'
		} else {
			b[at] = 'A'
		}
		return string(b)
	}
	dot := strings.LastIndexByte(good, '.')
	for _, tc := range []struct {
		name, tok, event, buyer string
		at                      time.Time
		want                    passReject
	}{
		{"missing", "", "e1", "u1", now, passMissing},
		{"signature changed", flip(good, len(good)-3), "e1", "u1", now, passForged},
		{"payload changed", flip(good, dot-3), "e1", "u1", now, passForged},
		{"another secret", other.sign(kindPass, "e1", "u1", exp), "e1", "u1", now, passForged},
		{"a place token", s.sign(kindPlace, "e1", "u1", exp), "e1", "u1", now, passForged},
		{"a bearer token", bearer, "e1", "u1", now, passForged},
		{"garbage", "bx1.%%%.$$$", "e1", "u1", now, passForged},
		{"too long", "bx1." + strings.Repeat("A", passTokenLenMax), "e1", "u1", now, passForged},
		{"another event", good, "e2", "u1", now, passMismatch},
		{"another buyer", good, "e1", "u2", now, passMismatch},
		{"at its expiry", good, "e1", "u1", time.UnixMilli(exp), passExpired},
		{"after its expiry", good, "e1", "u1", time.UnixMilli(exp + 1), passExpired},
	} {
		reason, err := s.checkPass(tc.tok, tc.event, tc.buyer, tc.at)
		require.ErrorIs(t, err, boxoffice.ErrAdmission, tc.name)
		require.Equal(t, tc.want, reason, tc.name)
	}
	// A place token names its buyer and event, and nothing else passes.
	place := s.sign(kindPlace, "e1", "u1", 0)
	ev, b, _, ok := s.verify(kindPlace, place)
	require.True(t, ok)
	require.Equal(t, []string{"e1", "u1"}, []string{ev, b})
	_, _, _, ok = s.verify(kindPlace, good)
	require.False(t, ok, "a pass is not a place token")
}

package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"boxoffice"
)

// Signed tokens of the waiting room. Both are HMAC-SHA256 over a payload
// naming what they bind, with keys derived from the auth secret that every
// node shares, so that any node verifies one without asking the leader:
//
//	pass:  event, buyer, expiry  — lets its buyer hold seats of the event until it expires
//	place: event, buyer          — names a buyer's place, for a page's live stream (no bearer there)
//
// Each kind has its own key (and its kind in the payload), so that neither
// a place token nor a bearer token passes as an admission pass.
//
//	token = "bx1." base64url(kind NUL event NUL buyer NUL expiresAtMs) "." base64url(mac)

const tokenPrefix = "bx1."

type passKind string

const (
	kindPass  passKind = "pass"
	kindPlace passKind = "place"
)

// passTokenLenMax bounds a pass or place token read from a request.
const passTokenLenMax = 512

type signer struct{ pass, place []byte }

func newSigner(secret []byte) signer {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("boxoffice " + label + " v1"))
		return m.Sum(nil)
	}
	return signer{pass: derive("admission pass"), place: derive("queue place")}
}

func (s signer) key(k passKind) []byte {
	if k == kindPass {
		return s.pass
	}
	return s.place
}

func (s signer) sign(k passKind, event, buyer string, expiresAtMs int64) string {
	payload := string(k) + "\x00" + event + "\x00" + buyer + "\x00" + strconv.FormatInt(expiresAtMs, 10)
	m := hmac.New(sha256.New, s.key(k))
	m.Write([]byte(payload))
	enc := base64.RawURLEncoding
	return tokenPrefix + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(m.Sum(nil))
}

// passReject names why a pass was refused (a metric label).
type passReject string

const (
	passMissing  passReject = "missing"
	passForged   passReject = "forged"
	passExpired  passReject = "expired"
	passMismatch passReject = "other_event_or_buyer"
)

// verify checks a token's signature and kind and returns what it binds.
func (s signer) verify(k passKind, tok string) (event, buyer string, expiresAtMs int64, ok bool) {
	if len(tok) > passTokenLenMax || !strings.HasPrefix(tok, tokenPrefix) {
		return "", "", 0, false
	}
	p64, m64, found := strings.Cut(tok[len(tokenPrefix):], ".")
	if !found {
		return "", "", 0, false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return "", "", 0, false
	}
	m := hmac.New(sha256.New, s.key(k))
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return "", "", 0, false
	}
	parts := strings.Split(string(payload), "\x00")
	if len(parts) != 4 || parts[0] != string(k) {
		return "", "", 0, false
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return parts[1], parts[2], exp, true
}

// checkPass verifies an admission pass for a hold of event by buyer at now.
func (s signer) checkPass(tok, event, buyer string, now time.Time) (passReject, error) {
	if tok == "" {
		return passMissing, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "the on-sale of event %q is protected: send the admission pass of its queue in %s", event, headerPass)
	}
	ev, b, exp, ok := s.verify(kindPass, tok)
	switch {
	case !ok:
		return passForged, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "the admission pass is not valid")
	case ev != event || b != buyer:
		return passMismatch, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "the admission pass is for another event or buyer")
	case now.UnixMilli() >= exp:
		return passExpired, boxoffice.Errorf(boxoffice.CodeAdmissionRequired, "the admission pass expired")
	}
	return "", nil
}

// headerPass carries the admission pass of a hold request.
const headerPass = "X-Admission-Pass"

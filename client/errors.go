package client

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"boxoffice"
)

// Error is an error answer of the API: an application/problem+json body
// (RFC 9457) with its stable code. It matches the root sentinels by code:
//
//	errors.Is(err, boxoffice.ErrSeatUnavailable)
//
// and boxoffice.CodeOf(err) returns its Code. An answer that is not a
// problem (a proxy's page, a plain-text 503) is an Error of code internal
// with the status it came with.
type Error struct {
	// Status is the HTTP status of the answer; 0 when the client refused
	// the call before sending it (a malformed id or idempotency key).
	Status int
	Code   boxoffice.Code
	Title  string
	Detail string
	// Retryable is true for the answers failover retries (503, 504, and
	// 502 from a proxy): the outcome of a write answered so is unknown,
	// and sending it again with the same idempotency key is safe.
	Retryable bool
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("boxoffice: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(' ')
	}
	b.WriteString(string(e.Code))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Is matches a root sentinel (a *boxoffice.Error without detail) of the
// same code, and an *Error target of the same code.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *boxoffice.Error:
		return t.Detail == "" && t.Code == e.Code
	case *Error:
		return t.Code == e.Code
	}
	return false
}

// As fills a **boxoffice.Error, so that boxoffice.CodeOf(err) and code
// switches written for the server's errors work on the client's too.
func (e *Error) As(target any) bool {
	if t, ok := target.(**boxoffice.Error); ok {
		*t = &boxoffice.Error{Code: e.Code, Detail: e.Detail}
		return true
	}
	return false
}

// localError is a call the client refuses to send.
func localError(code boxoffice.Code, detail string) *Error {
	return &Error{Code: code, Title: "refused by the client", Detail: detail}
}

// retryableCodes are the codes that mean "nothing was done, or the outcome
// is unknown; try again, elsewhere".
var retryableCodes = map[boxoffice.Code]bool{
	boxoffice.CodeNoLeader:    true,
	boxoffice.CodeNotLeader:   true,
	boxoffice.CodeUnavailable: true,
	boxoffice.CodeTimeout:     true,
}

func retryableStatus(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

type problemJSON struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Code   boxoffice.Code `json:"code"`
}

// parseProblem turns a non-2xx answer into an Error. The HTTP status wins
// over the body's: it is what the answer was.
func parseProblem(status int, contentType string, body []byte) *Error {
	e := &Error{Status: status, Title: http.StatusText(status)}
	mt, _, _ := mime.ParseMediaType(contentType)
	var p problemJSON
	if (mt == "application/problem+json" || mt == "application/json") && json.Unmarshal(body, &p) == nil && p.Code != "" {
		e.Code, e.Detail = p.Code, p.Detail
		if p.Title != "" {
			e.Title = p.Title
		}
	} else {
		e.Code = boxoffice.CodeInternal
		d := strings.TrimSpace(string(body))
		if len(d) > problemDetailBytesMax {
			d = d[:problemDetailBytesMax] + "…"
		}
		e.Detail = d
	}
	e.Retryable = retryableStatus(status) || retryableCodes[e.Code]
	return e
}

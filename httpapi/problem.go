package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/valyala/fasthttp"

	"boxoffice"
)

// problem is an RFC 9457 problem details body with the stable boxoffice code.
type problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Code   boxoffice.Code `json:"code"`
}

// statusOf maps each code to its HTTP status. A code missing here is a 500.
var statusOf = map[boxoffice.Code]int{
	boxoffice.CodeInvalidArgument:   http.StatusBadRequest,
	boxoffice.CodeSeatNotFound:      http.StatusBadRequest,
	boxoffice.CodeUnauthorized:      http.StatusUnauthorized,
	boxoffice.CodePaymentDeclined:   http.StatusPaymentRequired,
	boxoffice.CodeForbidden:         http.StatusForbidden,
	boxoffice.CodeAdmissionRequired: http.StatusForbidden,
	boxoffice.CodeQueueNotFound:     http.StatusNotFound,
	boxoffice.CodeEventNotFound:     http.StatusNotFound,
	boxoffice.CodeHoldNotFound:      http.StatusNotFound,
	boxoffice.CodeOrderNotFound:     http.StatusNotFound,
	boxoffice.CodeMemberNotFound:    http.StatusNotFound,
	boxoffice.CodeNotFound:          http.StatusNotFound,
	boxoffice.CodeVenueNotFound:     http.StatusNotFound,
	boxoffice.CodeVenueExists:       http.StatusConflict,
	boxoffice.CodeMethodNotAllowed:  http.StatusMethodNotAllowed,
	boxoffice.CodeEventExists:       http.StatusConflict,
	boxoffice.CodeConflict:          http.StatusConflict,
	boxoffice.CodeSeatUnavailable:   http.StatusConflict,
	boxoffice.CodeBuyerLimit:        http.StatusConflict,
	boxoffice.CodeHoldNotActive:     http.StatusConflict,
	boxoffice.CodeOrderNotActive:    http.StatusConflict,
	boxoffice.CodeHoldExtendLimit:   http.StatusConflict,
	boxoffice.CodeLayoutShrink:      http.StatusConflict,
	boxoffice.CodeHoldExpired:       http.StatusGone,
	boxoffice.CodeBodyTooLarge:      http.StatusRequestEntityTooLarge,
	boxoffice.CodeIdempotencyReused: http.StatusUnprocessableEntity,
	boxoffice.CodeInternal:          http.StatusInternalServerError,
	boxoffice.CodeNotLeader:         http.StatusServiceUnavailable,
	boxoffice.CodeNoLeader:          http.StatusServiceUnavailable,
	boxoffice.CodeUnavailable:       http.StatusServiceUnavailable,
	boxoffice.CodePaymentUnknown:    http.StatusServiceUnavailable,
	boxoffice.CodeTimeout:           http.StatusGatewayTimeout,
}

// StatusOf is the HTTP status of a code.
func StatusOf(c boxoffice.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError sends err as problem+json. Errors without a code are internal:
// their text is not sent, since it may describe internals.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	var e *boxoffice.Error
	if !errors.As(err, &e) {
		// The cause stays in the server's log (with the request id), not
		// in the answer.
		ctx.SetUserValue(userValueErr, err)
		e = &boxoffice.Error{Code: boxoffice.CodeInternal, Detail: "internal error; the request id is in X-Request-Id"}
	}
	writeProblem(ctx, e.Code, e.Detail)
}

func writeProblem(ctx *fasthttp.RequestCtx, code boxoffice.Code, detail string) {
	status := StatusOf(code)
	p := problem{
		Type:   "urn:boxoffice:problem:" + string(code),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
	b, _ := json.Marshal(p)
	ctx.Response.Header.SetContentType("application/problem+json")
	if status == http.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(1))
	}
	ctx.Response.Header.Set(headerProblem, string(code))
	if code == boxoffice.CodeNotLeader {
		ctx.Response.Header.Set(headerNotLeader, "1")
	}
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

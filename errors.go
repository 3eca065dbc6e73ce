package boxoffice

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. httpapi maps each to an
// HTTP status and sends it as the "code" of a problem+json body; clients
// switch on it. Never rename one.
type Code string

const (
	CodeInvalidArgument   Code = "invalid_argument"
	CodeEventNotFound     Code = "event_not_found"
	CodeEventExists       Code = "event_exists"
	CodeConflict          Code = "conflict"
	CodeSeatNotFound      Code = "seat_not_found"
	CodeSeatUnavailable   Code = "seat_unavailable"
	CodeBuyerLimit        Code = "buyer_limit_exceeded"
	CodeHoldNotFound      Code = "hold_not_found"
	CodeHoldExpired       Code = "hold_expired"
	CodeHoldNotActive     Code = "hold_not_active"
	CodeOrderNotFound     Code = "order_not_found"
	CodeOrderNotActive    Code = "order_not_active"
	CodeHoldExtendLimit   Code = "hold_extension_limit"
	CodeLayoutShrink      Code = "layout_in_use"
	CodeForbidden         Code = "forbidden"
	CodeUnauthorized      Code = "unauthorized"
	CodeNotFound          Code = "not_found"
	CodeMethodNotAllowed  Code = "method_not_allowed"
	CodeBodyTooLarge      Code = "body_too_large"
	CodeNotLeader         Code = "not_leader_retry"
	CodeNoLeader          Code = "no_leader"
	CodeUnavailable       Code = "unavailable"
	CodeTimeout           Code = "timeout"
	CodeMemberNotFound    Code = "member_not_found"
	CodeInternal          Code = "internal"
	CodePaymentDeclined   Code = "payment_declined"
	CodePaymentUnknown    Code = "payment_unknown"
	CodeIdempotencyReused Code = "idempotency_key_reused"
	// CodeAdmissionRequired: the event's on-sale is protected and the
	// caller has no valid admission pass for it.
	CodeAdmissionRequired Code = "admission_required"
	// CodeQueueNotFound: the event's on-sale is not protected, or the
	// caller has no place in its queue.
	CodeQueueNotFound Code = "queue_not_found"
	CodeVenueNotFound Code = "venue_not_found"
	CodeVenueExists   Code = "venue_exists"
)

// Codes lists every code, for documentation and tests.
func Codes() []Code {
	return []Code{
		CodeInvalidArgument, CodeEventNotFound, CodeEventExists, CodeConflict, CodeSeatNotFound, CodeSeatUnavailable,
		CodeBuyerLimit, CodeHoldNotFound, CodeHoldExpired, CodeHoldNotActive, CodeOrderNotFound,
		CodeOrderNotActive, CodeHoldExtendLimit, CodeLayoutShrink, CodeForbidden, CodeUnauthorized,
		CodeNotFound, CodeMethodNotAllowed, CodeBodyTooLarge, CodeNotLeader, CodeNoLeader,
		CodeUnavailable, CodeTimeout, CodeMemberNotFound, CodeInternal, CodePaymentDeclined,
		CodePaymentUnknown, CodeIdempotencyReused, CodeAdmissionRequired, CodeQueueNotFound, CodeVenueNotFound, CodeVenueExists,
	}
}

// Error is an error with a stable code. Errors of the same code match with
// errors.Is, whatever their detail.
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Detail
}

// Is makes errors.Is(err, boxoffice.ErrSeatUnavailable) true for any
// *Error with that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Detail == ""
}

// Errorf builds an *Error with a formatted detail.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or CodeInternal if it carries none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument = &Error{Code: CodeInvalidArgument}
	ErrEventNotFound   = &Error{Code: CodeEventNotFound}
	ErrEventExists     = &Error{Code: CodeEventExists}
	ErrSeatNotFound    = &Error{Code: CodeSeatNotFound}
	ErrSeatUnavailable = &Error{Code: CodeSeatUnavailable}
	ErrBuyerLimit      = &Error{Code: CodeBuyerLimit}
	ErrHoldNotFound    = &Error{Code: CodeHoldNotFound}
	ErrHoldExpired     = &Error{Code: CodeHoldExpired}
	ErrHoldNotActive   = &Error{Code: CodeHoldNotActive}
	ErrOrderNotFound   = &Error{Code: CodeOrderNotFound}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrPaymentDeclined = &Error{Code: CodePaymentDeclined}
	ErrPaymentUnknown  = &Error{Code: CodePaymentUnknown}
	ErrIdempotency     = &Error{Code: CodeIdempotencyReused}
	ErrNotLeader       = &Error{Code: CodeNotLeader}
	ErrNoLeader        = &Error{Code: CodeNoLeader}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrAdmission       = &Error{Code: CodeAdmissionRequired}
	ErrQueueNotFound   = &Error{Code: CodeQueueNotFound}
	ErrVenueNotFound   = &Error{Code: CodeVenueNotFound}
	ErrVenueExists     = &Error{Code: CodeVenueExists}
)

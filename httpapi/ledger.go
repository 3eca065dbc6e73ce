package httpapi

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// An event's ledger: every order and hold of it, and the seat map with each
// taken seat's owner. Its organiser and admins read it, page by page (the
// audit reads all of it and checks that no seat was sold twice).

// Pages of an event's orders and holds.
const (
	ledgerPageDefault = 100
	ledgerPageMax     = 1000
	// ledgerScanMax bounds the records of the shard one page reads, those of
	// other events included; a page may then end early, with a cursor.
	ledgerScanMax = 10_000
)

// ledgerOrderJSON is an order with what its organiser sees besides the
// buyer: how a failed checkout failed, and the reference of its refund.
type ledgerOrderJSON struct {
	orderJSON
	FailReason string `json:"failReason,omitempty"`
	RefundRef  string `json:"refundRef,omitempty"`
}

// ledgerSeatJSON is a seat with the hold that holds it or the order it was
// sold to.
type ledgerSeatJSON struct {
	ID       string `json:"id"`
	Category string `json:"category"`
	State    string `json:"state"`
	Hold     string `json:"hold,omitempty"`
	Order    string `json:"order,omitempty"`
	// Flags as in the seat map, so that both answers have one shape.
	Flags []string `json:"flags,omitempty"`
}

// ledgerPage reads the cursor and limit of a page.
func ledgerPage(ctx *fasthttp.RequestCtx) (cursor string, limit int, err error) {
	a := ctx.QueryArgs()
	cursor, limit = string(a.Peek("cursor")), ledgerPageDefault
	if cursor != "" && !boxoffice.ValidID(cursor) {
		return "", 0, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "cursor is not one this server gave")
	}
	if v := a.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > ledgerPageMax {
			return "", 0, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "limit must be 1..%d", ledgerPageMax)
		}
		limit = n
	}
	return cursor, limit, nil
}

// ledgerRead serves a read of an event's ledger to its owner, its grantees
// of view or more, and admins: the caller, the page and the event are checked
// before fn runs (see eventRead).
func (s *Server) ledgerRead(ctx *fasthttp.RequestCtx, event string, fn func(st *fsm.Store, cursor string, limit int) error) {
	cursor, limit, err := ledgerPage(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.eventRead(ctx, event, boxoffice.AccessView, func(st *fsm.Store) error { return fn(st, cursor, limit) })
}

// eventOrders serves GET /v1/events/{event}/orders: the event's orders in
// every state, in id order, a page at a time.
func (s *Server) eventOrders(ctx *fasthttp.RequestCtx, event string) {
	s.ledgerRead(ctx, event, func(st *fsm.Store, cursor string, limit int) error {
		index := st.AppliedIndex()
		orders, next, err := st.EventOrders(event, cursor, limit, ledgerScanMax)
		if err != nil {
			return err
		}
		out := make([]ledgerOrderJSON, len(orders))
		for i, o := range orders {
			out[i] = ledgerOrderJSON{orderJSON: orderOut(o), FailReason: o.FailReason, RefundRef: o.RefundRef}
		}
		ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(index, 10))
		writeJSON(ctx, 200, map[string]any{"event": event, "index": index, "orders": out, "nextCursor": next})
		return nil
	})
}

// eventHolds serves GET /v1/events/{event}/holds: the event's holds in
// every state, in id order, a page at a time.
func (s *Server) eventHolds(ctx *fasthttp.RequestCtx, event string) {
	s.ledgerRead(ctx, event, func(st *fsm.Store, cursor string, limit int) error {
		index := st.AppliedIndex()
		holds, next, err := st.EventHolds(event, cursor, limit, ledgerScanMax)
		if err != nil {
			return err
		}
		out := make([]holdJSON, len(holds))
		for i, h := range holds {
			out[i] = holdOut(h)
		}
		ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(index, 10))
		writeJSON(ctx, 200, map[string]any{"event": event, "index": index, "holds": out, "nextCursor": next})
		return nil
	})
}

// seatOwners serves GET /v1/events/{event}/seats?owners=true: the seat map
// with the owner of every taken seat, for the event's organiser or an admin.
// It is the slow path of the seat map (a string and a struct per seat),
// which buyers never take.
func (s *Server) seatOwners(ctx *fasthttp.RequestCtx, event string, f fsm.SeatFilter) {
	s.ledgerRead(ctx, event, func(st *fsm.Store, _ string, _ int) error {
		index := st.AppliedIndex()
		seats, err := st.Seats(event, f)
		if err != nil {
			return err
		}
		out := make([]ledgerSeatJSON, len(seats))
		for i, seat := range seats {
			out[i] = ledgerSeatJSON{ID: seat.ID, Category: seat.Category, State: seat.State.String(), Hold: seat.Hold, Order: seat.Order, Flags: seat.Flags}
		}
		ctx.Response.Header.Set("X-Boxoffice-Index", strconv.FormatUint(index, 10))
		writeJSON(ctx, 200, map[string]any{"event": event, "index": index, "seats": out})
		return nil
	})
}

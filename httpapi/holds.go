package httpapi

import (
	"context"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

type holdRequest struct {
	Seats      []string `json:"seats"`
	TTLSeconds int      `json:"ttlSeconds,omitempty"`
}

type releaseRequest struct {
	Seats []string `json:"seats"`
}

type purchaseRequest struct {
	PaymentMethod string `json:"paymentMethod"`
}

// checkSeatList validates a seat list before anything is proposed: its
// size, each id's syntax, no duplicates. Whether the seats exist is checked
// against the event on the leader.
func checkSeatList(seats []string, allowEmpty bool) error {
	if len(seats) == 0 && !allowEmpty {
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "seats: at least one seat is required")
	}
	if len(seats) > boxoffice.SeatsPerHoldMax {
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "seats: %d given, at most %d per hold", len(seats), boxoffice.SeatsPerHoldMax)
	}
	seen := make(map[string]bool, len(seats))
	for _, id := range seats {
		if !boxoffice.ValidID(id) {
			return boxoffice.Errorf(boxoffice.CodeSeatNotFound, "seat %q is not a seat id", id)
		}
		if seen[id] {
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "seat %q given twice", id)
		}
		seen[id] = true
	}
	return nil
}

// buyerOf is the buyer a command acts for: the caller, or anyone for an
// admin (the state machine then skips the ownership check).
func buyerOf(p Principal) string {
	if p.Role == RoleAdmin {
		return ""
	}
	return p.Subject
}

func (s *Server) hold(ctx *fasthttp.RequestCtx, event string) {
	if !validPathID(ctx, "event", event) {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var in holdRequest
	if err := readJSON(ctx, &in); err != nil {
		writeError(ctx, err)
		return
	}
	if err := checkSeatList(in.Seats, false); err != nil {
		writeError(ctx, err)
		return
	}
	if in.TTLSeconds < 0 || in.TTLSeconds > boxoffice.HoldTTLMax {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "ttlSeconds out of range")
		return
	}
	shard := s.node.ShardOfEvent(event)
	s.write(ctx, shard, func(cctx context.Context) error {
		// Validate against the leader's state before proposing; the state
		// machine checks again, since state may change in between.
		layout, err := s.node.Store(shard).Layout(event)
		if err != nil {
			return err
		}
		for _, id := range in.Seats {
			if _, ok := layout.Index(id); !ok {
				return boxoffice.Errorf(boxoffice.CodeSeatNotFound, "seat %q does not exist in event %q", id, event)
			}
		}
		res, err := s.propose(cctx, shard, &fsm.Hold{Event: event, Buyer: p.Subject, Seats: in.Seats, TTLSeconds: in.TTLSeconds})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 201, holdOut(res.Hold))
		return nil
	})
}

// holdShard resolves the shard of a hold or order id from the id itself.
func (s *Server) idShard(ctx *fasthttp.RequestCtx, what, id string) (int, bool) {
	if !validPathID(ctx, what, id) {
		return 0, false
	}
	shard, ok := s.node.ShardOfID(id)
	if !ok {
		code := boxoffice.CodeHoldNotFound
		if what == "order" {
			code = boxoffice.CodeOrderNotFound
		}
		writeProblem(ctx, code, what+" "+id+" does not exist")
		return 0, false
	}
	return shard, true
}

func (s *Server) getHold(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "hold", id)
	if !ok {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.read(ctx, shard, func() error {
		h, err := s.node.Store(shard).Hold(id)
		if err != nil {
			return err
		}
		if p.Role != RoleAdmin && h.Buyer != p.Subject {
			return boxoffice.Errorf(boxoffice.CodeForbidden, "hold %q belongs to another buyer", id)
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, holdOut(h))
		return nil
	})
}

func (s *Server) release(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "hold", id)
	if !ok {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var in releaseRequest
	if len(ctx.PostBody()) > 0 {
		if err := readJSON(ctx, &in); err != nil {
			writeError(ctx, err)
			return
		}
		if err := checkSeatList(in.Seats, false); err != nil {
			writeError(ctx, err)
			return
		}
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		res, err := s.propose(cctx, shard, &fsm.Release{Hold: id, Buyer: buyerOf(p), Seats: in.Seats})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		if res.Hold.State == boxoffice.HoldReleased {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return nil
		}
		writeJSON(ctx, 200, holdOut(res.Hold))
		return nil
	})
}

func (s *Server) purchase(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "hold", id)
	if !ok {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	var in purchaseRequest
	if len(ctx.PostBody()) > 0 {
		if err := readJSON(ctx, &in); err != nil {
			writeError(ctx, err)
			return
		}
	}
	if len(in.PaymentMethod) > boxoffice.IDLenMax {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "paymentMethod is too long")
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		// No payment gateway yet: the order is recorded as paid with no
		// charge reference. The checkout saga replaces this.
		res, err := s.propose(cctx, shard, &fsm.Purchase{Hold: id, Buyer: buyerOf(p)})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 201, orderOut(res.Order))
		return nil
	})
}

func (s *Server) getOrder(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "order", id)
	if !ok {
		return
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.read(ctx, shard, func() error {
		o, err := s.node.Store(shard).Order(id)
		if err != nil {
			return err
		}
		if p.Role != RoleAdmin && o.Buyer != p.Subject {
			return boxoffice.Errorf(boxoffice.CodeForbidden, "order %q belongs to another buyer", id)
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, orderOut(o))
		return nil
	})
}

package httpapi

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

type holdRequest struct {
	Seats      []string `json:"seats"`
	Area       string   `json:"area,omitempty"`
	Category   string   `json:"category"`
	Quantity   int      `json:"quantity"`
	Adjacent   bool     `json:"adjacent"`
	TTLSeconds int      `json:"ttlSeconds,omitempty"`
}

type releaseRequest struct {
	Seats []string `json:"seats"`
}

type purchaseRequest struct {
	PaymentMethod string `json:"paymentMethod"`
}

type extendRequest struct {
	TTLSeconds int `json:"ttlSeconds"`
}

type exchangeRequest struct {
	Release []string `json:"release"`
	Take    []string `json:"take"`
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
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	in, err := readHoldRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	// Any node refuses a hold without a valid pass at once; a keyed one
	// first looks for the answer of its first try, whose pass may have
	// expired since.
	passErr := s.checkHoldPass(ctx, event, p.Subject)
	if passErr != nil && !idem.on() {
		writeError(ctx, passErr)
		return
	}
	shard := s.node.ShardOfEvent(event)
	s.write(ctx, shard, func(cctx context.Context) error {
		var res fsm.Result
		var err error
		switch {
		case passErr != nil:
			res, err = s.storedOr(ctx, cctx, shard, idem, passErr)
		case in.Area != "":
			res, err = s.proposeIdem(ctx, cctx, shard, idem, &fsm.HoldArea{Event: event, Buyer: p.Subject, Area: in.Area, Quantity: in.Quantity, TTLSeconds: in.TTLSeconds})
		case len(in.Seats) > 0:
			res, err = s.holdSeats(ctx, cctx, shard, idem, event, p.Subject, in)
		default:
			res, err = s.holdBest(ctx, cctx, shard, idem, event, p.Subject, in)
		}
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 201, holdOut(res.Hold))
		return nil
	})
}

// Request bodies are decoded and checked by one function each, before
// anything is proposed, so that the fuzz targets of fuzz_body_test.go can
// call exactly what the handlers call.

// readHoldRequest reads the body of POST /v1/events/{event}/holds.
func readHoldRequest(ctx *fasthttp.RequestCtx) (holdRequest, error) {
	var in holdRequest
	if err := readJSON(ctx, &in); err != nil {
		return in, err
	}
	return in, in.check()
}

// readReleaseRequest reads the optional body of DELETE /v1/holds/{hold}:
// none releases the whole hold.
func readReleaseRequest(ctx *fasthttp.RequestCtx) (releaseRequest, error) {
	var in releaseRequest
	if len(ctx.PostBody()) == 0 {
		return in, nil
	}
	if err := readJSON(ctx, &in); err != nil {
		return in, err
	}
	return in, checkSeatList(in.Seats, false)
}

// readExtendRequest reads the optional body of POST /v1/holds/{hold}/extend.
func readExtendRequest(ctx *fasthttp.RequestCtx) (extendRequest, error) {
	var in extendRequest
	if len(ctx.PostBody()) > 0 {
		if err := readJSON(ctx, &in); err != nil {
			return in, err
		}
	}
	if in.TTLSeconds < 0 || in.TTLSeconds > boxoffice.HoldTTLMax {
		return in, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "ttlSeconds must be 0..%d", boxoffice.HoldTTLMax)
	}
	return in, nil
}

// readPurchaseRequest reads the optional body of POST /v1/holds/{hold}/purchase.
func readPurchaseRequest(ctx *fasthttp.RequestCtx) (purchaseRequest, error) {
	var in purchaseRequest
	if len(ctx.PostBody()) > 0 {
		if err := readJSON(ctx, &in); err != nil {
			return in, err
		}
	}
	if len(in.PaymentMethod) > boxoffice.IDLenMax {
		return in, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "paymentMethod is too long")
	}
	return in, nil
}

// readExchangeRequest reads the body of POST /v1/orders/{order}/exchange.
func readExchangeRequest(ctx *fasthttp.RequestCtx) (exchangeRequest, error) {
	var in exchangeRequest
	if err := readJSON(ctx, &in); err != nil {
		return in, err
	}
	for _, list := range [][]string{in.Release, in.Take} {
		if err := checkSeatList(list, false); err != nil {
			return in, err
		}
	}
	if len(in.Release) != len(in.Take) {
		return in, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "release and take must name as many seats")
	}
	return in, nil
}

func (in *holdRequest) check() error {
	if in.TTLSeconds < 0 || in.TTLSeconds > boxoffice.HoldTTLMax {
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "ttlSeconds must be 0..%d", boxoffice.HoldTTLMax)
	}
	if in.Area != "" {
		// General admission: a quantity of anonymous places of an area.
		switch {
		case len(in.Seats) > 0:
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "a general-admission hold asks for a quantity, not seat ids")
		case in.Category != "" || in.Adjacent:
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "give either area or category, not both (general-admission places are never adjacent)")
		case !boxoffice.ValidID(in.Area):
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "area must be an area id")
		case in.Quantity < 1 || in.Quantity > boxoffice.SeatsPerHoldMax:
			return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "quantity must be 1..%d", boxoffice.SeatsPerHoldMax)
		}
		return nil
	}
	byCategory := in.Category != "" || in.Quantity != 0 || in.Adjacent
	switch {
	case len(in.Seats) > 0 && byCategory:
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "give either seats or category and quantity, not both")
	case !byCategory:
		return checkSeatList(in.Seats, false)
	case !boxoffice.ValidID(in.Category):
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "category must be a category id")
	case in.Quantity < 1 || in.Quantity > boxoffice.SeatsPerHoldMax:
		return boxoffice.Errorf(boxoffice.CodeInvalidArgument, "quantity must be 1..%d", boxoffice.SeatsPerHoldMax)
	}
	return nil
}

// holdSeats holds the seats the buyer named.
func (s *Server) holdSeats(ctx *fasthttp.RequestCtx, cctx context.Context, shard int, idem idempotency, event, buyer string, in holdRequest) (fsm.Result, error) {
	// Validate against the leader's state before proposing; the state
	// machine checks again, since state may change in between. (Events are
	// never deleted and layouts only grow, so this check cannot contradict
	// an earlier run of the same idempotent request.)
	layout, err := s.node.Store(shard).Layout(event)
	if err != nil {
		return fsm.Result{}, err
	}
	for _, id := range in.Seats {
		idx, ok := layout.Index(id)
		if !ok {
			return fsm.Result{}, boxoffice.Errorf(boxoffice.CodeSeatNotFound, "seat %q does not exist in event %q", id, event)
		}
		if layout.InArea(idx) {
			return fsm.Result{}, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "%q is a general-admission place: hold {\"area\":…,\"quantity\":n} instead", id)
		}
	}
	return s.proposeIdem(ctx, cctx, shard, idem, &fsm.Hold{Event: event, Buyer: buyer, Seats: in.Seats, TTLSeconds: in.TTLSeconds})
}

// bestAttemptsMax bounds the picks of one best-available hold: a pick loses
// only to a hold of named seats committed between the pick and its own
// commit, since concurrent best-available picks skip each other's seats.
const bestAttemptsMax = 4

// holdBest picks the best free seats of a category on the leader and holds
// them. Picks still in flight are skipped by concurrent picks, so that
// concurrent buyers of the same category do not all pick the same seats.
func (s *Server) holdBest(ctx *fasthttp.RequestCtx, cctx context.Context, shard int, idem idempotency, event, buyer string, in holdRequest) (fsm.Result, error) {
	st := s.node.Store(shard)
	layout, err := st.Layout(event)
	if err != nil {
		return fsm.Result{}, err
	}
	for attempt := 1; ; attempt++ {
		seats, release, err := s.picks.pick(event, func(skip func(int) bool) ([]string, error) {
			return st.PickBest(event, in.Category, in.Quantity, in.Adjacent, skip)
		}, layout)
		if err != nil && idem.on() && boxoffice.CodeOf(err) == boxoffice.CodeSeatUnavailable {
			// No seats to pick may be because an earlier attempt of this
			// very request took them, and its answer was lost (its leader
			// lost the lead after the commit): the buyer retries with the
			// key. The state machine answers such a retry from its record,
			// but one that picks nothing never reaches it, so look the
			// record up here, once everything committed is applied.
			if res, ok, rerr := s.storedAnswer(ctx, cctx, shard, idem); rerr != nil || ok {
				if rerr != nil {
					return fsm.Result{}, rerr
				}
				return res, res.Err
			}
		}
		if err != nil {
			return fsm.Result{}, err
		}
		res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.Hold{Event: event, Buyer: buyer, Seats: seats, TTLSeconds: in.TTLSeconds})
		release()
		if boxoffice.CodeOf(err) == boxoffice.CodeSeatUnavailable && attempt < bestAttemptsMax {
			continue
		}
		return res, err
	}
}

// inflightPicks remembers the seats of best-available holds not yet
// committed, per event.
type inflightPicks struct {
	mu sync.Mutex
	m  map[string]map[int]struct{}
}

// pick runs choose with a skip function over the in-flight seats, marks
// the chosen seats in flight, and returns a func that unmarks them.
func (p *inflightPicks) pick(event string, choose func(skip func(int) bool) ([]string, error), layout *boxoffice.Layout) ([]string, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[string]map[int]struct{})
	}
	busy := p.m[event]
	seats, err := choose(func(idx int) bool { _, ok := busy[idx]; return ok })
	if err != nil {
		return nil, nil, err
	}
	if busy == nil {
		busy = make(map[int]struct{})
		p.m[event] = busy
	}
	idx := make([]int, len(seats))
	for i, id := range seats {
		idx[i], _ = layout.Index(id)
		busy[idx[i]] = struct{}{}
	}
	return seats, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, n := range idx {
			delete(busy, n)
		}
		if len(busy) == 0 {
			delete(p.m, event)
		}
	}, nil
}

// writer authenticates a write and reads its Idempotency-Key.
func (s *Server) writer(ctx *fasthttp.RequestCtx, roles ...Role) (Principal, idempotency, bool) {
	var p Principal
	var err error
	if len(roles) == 0 {
		p, err = s.authenticate(ctx)
	} else {
		p, err = s.require(ctx, roles...)
	}
	if err != nil {
		writeError(ctx, err)
		return p, idempotency{}, false
	}
	idem, err := readIdempotency(ctx, p)
	if err != nil {
		writeError(ctx, err)
		return p, idem, false
	}
	return p, idem, true
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
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	in, err := readReleaseRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.Release{Hold: id, Buyer: buyerOf(p), Seats: in.Seats})
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

func (s *Server) extend(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "hold", id)
	if !ok {
		return
	}
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	in, err := readExtendRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.ExtendHold{Hold: id, Buyer: buyerOf(p), TTLSeconds: in.TTLSeconds})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, holdOut(res.Hold))
		return nil
	})
}

func (s *Server) purchase(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "hold", id)
	if !ok {
		return
	}
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	in, err := readPurchaseRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		// The saga: begin (with the buyer's key), charge, complete. Its
		// answer is the order paid, or why not.
		var wrap func(fsm.Command) fsm.Command
		if idem.on() {
			wrap = func(c fsm.Command) fsm.Command {
				return &fsm.Idempotent{Subject: idem.subject, Key: idem.key, Hash: idem.hash, Command: c}
			}
		}
		res, err := s.cfg.Checkout.Purchase(cctx, shard, id, buyerOf(p), in.PaymentMethod, wrap)
		if res.Replayed {
			ctx.Response.Header.Set(headerReplayed, "true")
		}
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 201, orderOut(res.Order))
		return nil
	})
}

func (s *Server) cancelOrder(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "order", id)
	if !ok {
		return
	}
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		// The buyer cancels its own order; anyone else, on behalf of the
		// order's event, if the state machine finds it may manage it when
		// the cancel applies.
		var c fsm.Command = &fsm.CancelOrder{Order: id, Buyer: buyerOf(p)}
		if o, err := s.node.Store(shard).Order(id); err == nil && !isAdmin(p) && o.Buyer != p.Subject {
			c = &fsm.Authorized{Event: o.Event, Actor: p.Subject, Need: boxoffice.AccessManage, Command: &fsm.CancelOrder{Order: id}}
		}
		res, err := s.proposeIdem(ctx, cctx, shard, idem, c)
		if err != nil {
			return err
		}
		// The refund now, if the gateway answers; the leader's recovery
		// makes it later otherwise.
		s.cfg.Checkout.Refund(shard, id)
		o := res.Order
		if cur, err := s.node.Store(shard).Order(id); err == nil {
			o = cur
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, orderOut(o))
		return nil
	})
}

func (s *Server) exchange(ctx *fasthttp.RequestCtx, id string) {
	shard, ok := s.idShard(ctx, "order", id)
	if !ok {
		return
	}
	p, idem, ok := s.writer(ctx)
	if !ok {
		return
	}
	in, err := readExchangeRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.write(ctx, shard, func(cctx context.Context) error {
		res, err := s.proposeIdem(ctx, cctx, shard, idem, &fsm.Exchange{Order: id, Buyer: buyerOf(p), Release: in.Release, Take: in.Take})
		if err != nil {
			return err
		}
		s.setIndex(ctx, shard)
		writeJSON(ctx, 200, orderOut(res.Order))
		return nil
	})
}

// myItemsMax bounds the holds or orders one /v1/me request reads.
const myItemsMax = 1000

// myHolds lists the caller's holds in every shard, newest first.
func (s *Server) myHolds(ctx *fasthttp.RequestCtx) {
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	holds, err := mine(s, p.Subject, (*fsm.Store).HoldsOf, (*fsm.Store).Hold, func(h *boxoffice.Hold) int64 { return h.CreatedAtMs })
	if err != nil {
		writeError(ctx, err)
		return
	}
	out := make([]holdJSON, len(holds))
	for i, h := range holds {
		out[i] = holdOut(h)
	}
	writeJSON(ctx, 200, map[string]any{"holds": out})
}

// myOrders lists the caller's orders in every shard, newest first.
func (s *Server) myOrders(ctx *fasthttp.RequestCtx) {
	p, err := s.authenticate(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	orders, err := mine(s, p.Subject, (*fsm.Store).OrdersOf, (*fsm.Store).Order, func(o *boxoffice.Order) int64 { return o.CreatedAtMs })
	if err != nil {
		writeError(ctx, err)
		return
	}
	out := make([]orderJSON, len(orders))
	for i, o := range orders {
		out[i] = orderOut(o)
	}
	writeJSON(ctx, 200, map[string]any{"orders": out})
}

// mine reads a buyer's holds or orders from every shard of this node, at
// most myItemsMax, newest first.
func mine[T any](s *Server, buyer string, ids func(*fsm.Store, string) ([]string, error), load func(*fsm.Store, string) (T, error), created func(T) int64) ([]T, error) {
	var all []T
	for shard := 0; shard < s.node.ShardCount() && len(all) < myItemsMax; shard++ {
		st := s.node.Store(shard)
		list, err := ids(st, buyer)
		if err != nil {
			return nil, err
		}
		for _, id := range list[:min(len(list), myItemsMax-len(all))] {
			v, err := load(st, id)
			if err != nil {
				return nil, err
			}
			all = append(all, v)
		}
	}
	slices.SortStableFunc(all, func(a, b T) int { return cmp.Compare(created(b), created(a)) })
	return all, nil
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

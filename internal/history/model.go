package history

import (
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"

	"boxoffice"
	"boxoffice/client"
)

// state is who owns the seats of one partition that are not free, sorted by
// seat; a seat that is not listed is free. Owners:
//
//	"h:<hold>"  held by a hold
//	"u:<op id>" held by a hold whose id nobody learnt (an unknown outcome)
//	"s:<hold>"  sold through the purchase of a hold
//
// States are never modified: each step builds a new one.
type state []owned

type owned struct{ seat, owner string }

func (st state) owner(seat string) string {
	i := sort.Search(len(st), func(i int) bool { return st[i].seat >= seat })
	if i < len(st) && st[i].seat == seat {
		return st[i].owner
	}
	return ""
}

// with returns a copy of st in which seats belong to owner ("" frees them).
func (st state) with(seats []string, owner string) state {
	m := make(map[string]string, len(st)+len(seats))
	for _, o := range st {
		m[o.seat] = o.owner
	}
	for _, s := range seats {
		if owner == "" {
			delete(m, s)
		} else {
			m[s] = owner
		}
	}
	out := make(state, 0, len(m))
	for s, o := range m {
		out = append(out, owned{s, o})
	}
	slices.SortFunc(out, func(a, b owned) int { return strings.Compare(a.seat, b.seat) })
	return out
}

// heldBy lists the seats an active hold still has.
func (st state) heldBy(hold string) []string {
	var out []string
	for _, o := range st {
		if o.owner == "h:"+hold {
			out = append(out, o.seat)
		}
	}
	return out
}

func (st state) soldVia(hold string) bool {
	return slices.ContainsFunc(st, func(o owned) bool { return o.owner == "s:"+hold })
}

func (st state) allFree(seats []string) bool {
	for _, s := range seats {
		if st.owner(s) != "" {
			return false
		}
	}
	return true
}

func (st state) String() string {
	parts := make([]string, len(st))
	for i, o := range st {
		parts[i] = o.seat + "=" + o.owner
	}
	if len(parts) == 0 {
		return "all free"
	}
	return strings.Join(parts, " ")
}

// sameSet reports whether a and b hold the same seats, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func subset(a, of []string) bool {
	for _, s := range a {
		if !slices.Contains(of, s) {
			return false
		}
	}
	return true
}

func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// step is the sequential specification: may op happen in state st, and to
// what state does it lead?
func step(st state, op Op) (bool, state) {
	switch op.Kind {
	case KindHold:
		return stepHold(st, op)
	case KindHoldArea:
		// Only successful ones reach the model (see Operations): a hold
		// of the places it was given, which must have been free.
		return stepHold(st, op)
	case KindRelease:
		return stepRelease(st, op)
	case KindPurchase:
		return stepPurchase(st, op)
	case KindReadSeats:
		return readSeats(st, op), st
	case KindReadHold:
		return readHold(st, op), st
	}
	return false, st
}

func stepHold(st state, op Op) (bool, state) {
	switch op.Outcome {
	case OK:
		if op.Hold == "" || !sameSet(op.HoldSeats, op.Seats) || !st.allFree(op.Seats) {
			return false, st
		}
		return true, st.with(op.Seats, "h:"+op.Hold)
	case Fail:
		switch boxoffice.Code(op.Code) {
		case boxoffice.CodeSeatUnavailable:
			return !st.allFree(op.Seats), st
		case boxoffice.CodeBuyerLimit:
			return true, st // the buyer's other seats: outside the model
		}
		return false, st
	case Unknown:
		// If it took effect here, it held the seats if they were free.
		// (If it never took effect, it is placed after everything else.)
		if !st.allFree(op.Seats) {
			return true, st
		}
		return true, st.with(op.Seats, "u:"+strconv.Itoa(op.ID))
	}
	return false, st
}

func stepRelease(st state, op Op) (bool, state) {
	held := st.heldBy(op.Hold)
	free := op.Seats
	if len(free) == 0 {
		free = held
	}
	can := len(held) > 0 && subset(free, held)
	switch op.Outcome {
	case OK:
		left := minus(held, free)
		if !can || !sameSet(op.HoldSeats, left) || (len(left) == 0) != (op.State == client.HoldReleased) {
			return false, st
		}
		return true, st.with(free, "")
	case Fail:
		if boxoffice.Code(op.Code) == boxoffice.CodeHoldNotActive {
			return len(held) == 0, st
		}
		return false, st
	case Unknown:
		if !can {
			return true, st
		}
		return true, st.with(free, "")
	}
	return false, st
}

func stepPurchase(st state, op Op) (bool, state) {
	held := st.heldBy(op.Hold)
	switch op.Outcome {
	case OK:
		if len(held) == 0 || !sameSet(op.HoldSeats, held) || op.Order == "" {
			return false, st
		}
		return true, st.with(held, "s:"+op.Hold)
	case Fail:
		switch boxoffice.Code(op.Code) {
		case boxoffice.CodePaymentDeclined:
			return len(held) > 0, st // the hold is active again
		case boxoffice.CodeHoldNotActive:
			return len(held) == 0, st
		}
		return false, st
	case Unknown:
		if len(held) == 0 {
			return true, st
		}
		return true, st.with(held, "s:"+op.Hold)
	}
	return false, st
}

func readSeats(st state, op Op) bool {
	for seat, got := range op.Observed {
		owner := st.owner(seat)
		var want string
		switch {
		case owner == "":
			want = client.SeatFree
		case strings.HasPrefix(owner, "s:"):
			want = client.SeatSold
		default:
			want = client.SeatHeld
		}
		if got != want {
			return false
		}
	}
	return true
}

func readHold(st state, op Op) bool {
	held := st.heldBy(op.Hold)
	switch op.State {
	case client.HoldActive, client.HoldCheckingOut:
		return len(held) > 0 && sameSet(op.HoldSeats, held)
	case client.HoldPurchased:
		return len(held) == 0 && st.soldVia(op.Hold)
	case client.HoldReleased:
		return len(held) == 0 && !st.soldVia(op.Hold)
	}
	return false // expired, or a state the model does not know
}

// Model is the porcupine model of seat ownership, partitioned by groups of
// seats. Its operations' Input is an Op (Output is unused).
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() any { return state(nil) },
		Step: func(s, input, _ any) (bool, any) {
			return step(s.(state), input.(Op))
		},
		Equal: func(a, b any) bool { return slices.Equal(a.(state), b.(state)) },
		Hash: func(s any) uint64 {
			h := fnv.New64a()
			for _, o := range s.(state) {
				h.Write([]byte(o.seat))
				h.Write([]byte{0})
				h.Write([]byte(o.owner))
				h.Write([]byte{0})
			}
			return h.Sum64()
		},
		DescribeOperation: func(input, _ any) string {
			op := input.(Op)
			return op.String()
		},
		DescribeState: func(s any) string { return s.(state).String() },
	}
}

// Operations turns recorded operations into porcupine's: reads that failed
// are dropped (they changed nothing and saw nothing), and writes of
// unknown outcome get an open return time.
func Operations(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if !op.IsWrite() && op.Outcome != OK {
			continue
		}
		if op.Kind == KindHoldArea && op.Outcome != OK {
			// A refused area hold changed nothing, and which places a
			// refusal concerned is not known: the model has no area
			// counts. (One of unknown outcome is a violation: see Check.)
			continue
		}
		ret := op.Return
		if op.Outcome == Unknown {
			ret = math.MaxInt64
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: op, Call: op.Call, Output: nil, Return: ret})
	}
	return out
}

// partition splits a history into independent groups of seats: the
// connected components of the seats that writes touch together (a hold's
// seats, and through its id every later call on that hold). A read of
// seats in several groups becomes one read per group.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	uf := newUnionFind()
	elems := func(op Op) []string {
		var e []string
		if op.Hold != "" {
			e = append(e, "hold:"+op.Hold)
		}
		e = append(e, op.Seats...)
		if op.Kind == KindReadSeats {
			e = nil
			for s := range op.Observed {
				e = append(e, s)
			}
		}
		return e
	}
	for _, p := range history {
		op := p.Input.(Op)
		e := elems(op)
		for _, x := range e {
			uf.add(x)
		}
		if op.Kind != KindReadSeats {
			for _, x := range e[min(1, len(e)):] {
				uf.union(e[0], x)
			}
		}
	}
	groups := make(map[string][]porcupine.Operation)
	var roots []string
	put := func(root string, p porcupine.Operation) {
		if _, ok := groups[root]; !ok {
			roots = append(roots, root)
		}
		groups[root] = append(groups[root], p)
	}
	for _, p := range history {
		op := p.Input.(Op)
		e := elems(op)
		if len(e) == 0 {
			put("", p)
			continue
		}
		if op.Kind != KindReadSeats {
			put(uf.find(e[0]), p)
			continue
		}
		parts := make(map[string]map[string]string)
		var order []string
		for _, s := range e {
			r := uf.find(s)
			if parts[r] == nil {
				parts[r] = make(map[string]string)
				order = append(order, r)
			}
			parts[r][s] = op.Observed[s]
		}
		slices.Sort(order)
		for _, r := range order {
			part := op
			part.Observed = parts[r]
			q := p
			q.Input = part
			put(r, q)
		}
	}
	out := make([][]porcupine.Operation, 0, len(roots))
	for _, r := range roots {
		out = append(out, groups[r])
	}
	return out
}

type unionFind struct{ parent map[string]string }

func newUnionFind() *unionFind { return &unionFind{parent: make(map[string]string)} }

func (u *unionFind) add(x string) {
	if _, ok := u.parent[x]; !ok {
		u.parent[x] = x
	}
}

func (u *unionFind) find(x string) string {
	for u.parent[x] != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = u.parent[x]
	}
	return x
}

// union joins two groups; the smaller name becomes the root, so that
// partitions come out in the same order on every run.
func (u *unionFind) union(a, b string) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if rb < ra {
		ra, rb = rb, ra
	}
	u.parent[rb] = ra
}

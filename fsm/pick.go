package fsm

import (
	"boxoffice"
)

// PickBest chooses quantity free seats of a category for a best-available
// hold, best first (sections in venue order, then rows, then numbers), from
// local state. It only reads: the caller proposes a Hold of the seats it
// returns, and the state machine checks them again. skip, if not nil,
// excludes seats (ones the caller has picked for holds still in flight).
//
// With adjacent, the seats are in one row of one section with contiguous
// numbers, and the pick avoids leaving a single free seat between taken
// ones (or at a row's end) whenever another run of free seats allows it.
// It returns seat_unavailable when no pick exists.
func (s *Store) PickBest(event, category string, quantity int, adjacent bool, skip func(idx int) bool) ([]string, error) {
	if quantity < 1 || quantity > boxoffice.SeatsPerHoldMax {
		return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "quantity must be 1..%d", boxoffice.SeatsPerHoldMax)
	}
	ei, err := s.eventInfo(event)
	if err != nil {
		return nil, err
	}
	if _, ok := ei.ev.Category(category); !ok {
		return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "event %q has no category %q", event, category)
	}
	l := ei.layout
	if skip != nil {
		inflight := skip
		skip = func(idx int) bool { return !l.Exists(idx) || inflight(idx) }
	} else {
		skip = func(idx int) bool { return !l.Exists(idx) } // holes are never free
	}
	seated := false
	for si, sec := range l.Sections {
		seated = seated || sec.Category == category && !l.IsArea(si)
	}
	if !seated && l.HasAreas() {
		return nil, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "category %q of event %q has general-admission places only: hold {\"area\":…,\"quantity\":n}", category, event)
	}
	var picked []int
	fallback := -1 // first run start that fits but strands a seat
	fallbackLen := 0
	found := false
	for si, sec := range l.Sections {
		if sec.Category != category || l.IsArea(si) {
			continue // general-admission places are held by area and quantity
		}
		first, n, _ := l.SectionRange(sec.ID)
		// Walk the section's seats in order, stopping at the first pick
		// that fits: early in an on-sale that is near the front, and the
		// rest of the section is never read.
		runStart, runRow := -1, -1
		closeRun := func(end int) bool { // the free run [runStart, end) ended
			if runStart < 0 {
				return false
			}
			run := end - runStart
			start := runStart
			runStart = -1
			switch {
			case run == quantity || run-quantity >= 2:
				picked, found = span(start, quantity), true
				return true
			case run > quantity && fallback < 0:
				fallback, fallbackLen = start, run
			}
			return false
		}
		err := s.walkSeats(event, first, n, skip, func(idx int, free bool) bool {
			if !adjacent {
				if free {
					picked = append(picked, idx)
				}
				found = len(picked) == quantity
				return !found
			}
			row := (idx - first) / sec.SeatsPerRow
			if runStart >= 0 && (!free || row != runRow) {
				if closeRun(idx) {
					return false
				}
			}
			if free && runStart < 0 {
				runStart, runRow = idx, row
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		if adjacent && !found {
			closeRun(first + n)
		}
		if found {
			return ids(l, picked), nil
		}
	}
	if adjacent && fallback >= 0 && fallbackLen >= quantity {
		// Every run that fits strands one seat: strand it, as no other
		// choice exists.
		return ids(l, span(fallback, quantity)), nil
	}
	how := ""
	if adjacent {
		how = " side by side"
	}
	return nil, boxoffice.Errorf(boxoffice.CodeSeatUnavailable, "no %d free seats of category %q%s in event %q", quantity, category, how, event)
}

// walkSeats calls visit for each seat index of [first, first+n) in order,
// with whether the seat is free (no unexpired record, not skipped), until
// visit returns false. It reads only the records of the seats it passes.
func (s *Store) walkSeats(event string, first, n int, skip func(int) bool, visit func(idx int, free bool) bool) error {
	now := s.NowMs()
	open := func(idx int) bool { return skip == nil || !skip(idx) }
	next, stopped := first, false
	err := s.scan(seatKey(event, first), seatKey(event, first+n), func(k, v []byte) (bool, error) {
		rec, err := decodeSeat(v)
		if err != nil {
			return false, err
		}
		idx := seatIndexOf(k)
		for ; next < idx; next++ {
			if !visit(next, open(next)) {
				stopped = true
				return false, nil
			}
		}
		next = idx + 1
		if !visit(idx, !rec.takenAt(now) && open(idx)) {
			stopped = true
			return false, nil
		}
		return true, nil
	})
	if err != nil || stopped {
		return err
	}
	for ; next < first+n; next++ {
		if !visit(next, open(next)) {
			return nil
		}
	}
	return nil
}

func span(first, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = first + i
	}
	return out
}

func ids(l *boxoffice.Layout, idx []int) []string {
	out := make([]string, len(idx))
	for i, n := range idx {
		out[i] = l.ID(n)
	}
	return out
}

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
	var picked []int
	fallback := -1 // first run start that fits but strands a seat
	fallbackLen := 0
	for _, sec := range l.Sections {
		if sec.Category != category {
			continue
		}
		first, n, _ := l.SectionRange(sec.ID)
		taken, err := s.takenSeats(event, first, first+n)
		if err != nil {
			return nil, err
		}
		isFree := makeFreeFunc(taken, skip)
		if !adjacent {
			for idx := first; idx < first+n && len(picked) < quantity; idx++ {
				if isFree(idx) {
					picked = append(picked, idx)
				}
			}
			if len(picked) == quantity {
				return ids(l, picked), nil
			}
			continue
		}
		for row := 0; row < sec.Rows; row++ {
			rowStart := first + row*sec.SeatsPerRow
			for i := 0; i < sec.SeatsPerRow; {
				if !isFree(rowStart + i) {
					i++
					continue
				}
				j := i
				for j < sec.SeatsPerRow && isFree(rowStart+j) {
					j++
				}
				run := j - i
				switch {
				case run == quantity || run-quantity >= 2:
					return ids(l, span(rowStart+i, quantity)), nil
				case run > quantity && fallback < 0:
					fallback, fallbackLen = rowStart+i, run
				}
				i = j
			}
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

// makeFreeFunc reports whether a seat index is free: not taken, not skipped.
func makeFreeFunc(taken []takenSeat, skip func(int) bool) func(int) bool {
	set := make(map[int]bool, len(taken))
	for _, t := range taken {
		set[t.idx] = true
	}
	return func(idx int) bool { return !set[idx] && (skip == nil || !skip(idx)) }
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

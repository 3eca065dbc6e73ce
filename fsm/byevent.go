package fsm

import "boxoffice"

// Orders and holds are keyed by their own id, not by event (a buyer's and a
// checkout's look-ups need only the id), so listing one event's orders or
// holds reads the shard's in id order and keeps the event's. scanMax bounds
// what one call reads, whatever it keeps: a page of an event with few orders
// in a shard with many ends early, with a cursor to go on from.

// EventOrders lists the orders of event in id order, after the id after
// ("" from the first): at most limit, reading at most scanMax orders of the
// shard. next is the id to continue after, "" once every order was read.
func (s *Store) EventOrders(event, after string, limit, scanMax int) (orders []*boxoffice.Order, next string, err error) {
	next, err = s.scanByEvent(tagOrder, after, limit, scanMax, func(v []byte) (bool, error) {
		o, err := decodeOrder(v)
		if err != nil || o.Event != event {
			return false, err
		}
		orders = append(orders, o)
		return true, nil
	})
	return orders, next, err
}

// EventHolds is EventOrders for holds. A hold past its expiry that the sweep
// has not reached yet reads as expired, as Hold reads it.
func (s *Store) EventHolds(event, after string, limit, scanMax int) (holds []*boxoffice.Hold, next string, err error) {
	now := s.NowMs()
	next, err = s.scanByEvent(tagHold, after, limit, scanMax, func(v []byte) (bool, error) {
		h, err := decodeHold(v)
		if err != nil || h.Event != event {
			return false, err
		}
		if h.State == boxoffice.HoldActive && h.ExpiresAtMs <= now {
			h.State = boxoffice.HoldExpired
		}
		holds = append(holds, h)
		return true, nil
	})
	return holds, next, err
}

// scanByEvent reads the records under tag after the id after, calling keep
// on each; it stops once keep accepted limit of them or scanMax were read,
// and returns the id of the last one read then ("" if it read to the end).
func (s *Store) scanByEvent(tag byte, after string, limit, scanMax int, keep func(v []byte) (bool, error)) (string, error) {
	if limit < 1 || scanMax < 1 {
		return "", boxoffice.Errorf(boxoffice.CodeInvalidArgument, "limit and scanMax must be positive")
	}
	lower := []byte{tag}
	if after != "" {
		lower = append(key(tag, after), 0)
	}
	var kept, read int
	var last string
	full := false
	err := s.scan(lower, []byte{tag + 1}, func(k, v []byte) (bool, error) {
		ok, err := keep(v)
		if err != nil {
			return false, err
		}
		read++
		if ok {
			kept++
		}
		last = string(k[1:])
		full = kept >= limit || read >= scanMax
		return !full, nil
	})
	if err != nil || !full {
		return "", err
	}
	return last, nil
}

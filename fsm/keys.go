package fsm

import "encoding/binary"

// Pebble key layout. Every key starts with a one-byte table tag; the parts
// after it are separated by 0x00, which no identifier may contain. One
// event's seats are one contiguous range.
//
//	m applied                          → applied index u64 BE, nowMs u64 BE
//	e <event>                          → event
//	s <event> 0 <seat index u32 BE>    → seat record (only taken seats; absent = free)
//	h <hold>                           → hold
//	o <order>                          → order
//	b <event> 0 <buyer>                → a buyer in an event: seats bought, active holds
//	x <expiresAtMs u64 BE> <hold>      → active hold, by expiry time
//	H <buyer> 0 <hold>                 → every hold of a buyer
//	O <buyer> 0 <order>                → every order of a buyer
//	n <node>                           → cluster member
//	k <order>                          → checkout in flight (order pending)
//	r <order>                          → refund in flight (order cancelled, or failed after a charge)
//	v <order>                          → failed checkout watched for a late charge: until (ms)
//	i <subject> 0 <idempotency key>    → request hash, createdAtMs, stored result
//	I <createdAtMs u64 BE> <subject> 0 <key> → idempotency record, by age
//	P <event> 0 <user>                 → access grant: level (see access.go)
//	R <event> 0 <kind> <id>            → report counters (see report.go)
//	q <event>                          → the event's queue (queue.go)
//	Q <event>                          → (empty) list of the queues
//	j <event> 0 <buyer>                → a buyer's place in it
//	J <event> 0 <seq u64 BE>           → the buyer of a place, in join order
//	w <event> 0 <passExpiresAtMs u64 BE> <seq u64 BE> → admitted, holds nothing yet
//	V <venue>, W <venue> 0 <version u32 BE> → reusable venue: newest, every version (venues.go)
//	g <event> 0 <area>, G <event> 0 <area> 0 <pos u32 BE> → a general-admission area's allocator (venues.go)
const (
	tagMeta       = 'm'
	tagEvent      = 'e'
	tagSeat       = 's'
	tagHold       = 'h'
	tagOrder      = 'o'
	tagBuyer      = 'b'
	tagExpiry     = 'x'
	tagHoldsBy    = 'H'
	tagOrdersBy   = 'O'
	tagNode       = 'n'
	tagIdem       = 'i'
	tagCheckout   = 'k'
	tagRefund     = 'r'
	tagVerify     = 'v'
	tagIdemAge    = 'I'
	tagGrant      = 'P'
	tagReport     = 'R'
	tagQueue      = 'q'
	tagPlace      = 'j'
	tagPlaceSeq   = 'J'
	tagAdmit      = 'w'
	tagQueueList  = 'Q'
	keyAppliedStr = "mapplied"
)

var keyApplied = []byte(keyAppliedStr)

func key(tag byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n)
	k = append(k, tag)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

// prefix is key(tag, parts...) followed by the separator, so that it bounds
// exactly the keys that extend parts.
func prefix(tag byte, parts ...string) []byte { return append(key(tag, parts...), 0) }

func seatKey(event string, idx int) []byte {
	k := make([]byte, 0, len(event)+6)
	k = append(k, tagSeat)
	k = append(k, event...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(idx))
}

func seatIndexOf(k []byte) int { return int(binary.BigEndian.Uint32(k[len(k)-4:])) }

func expiryKey(expiresAtMs int64, hold string) []byte {
	k := make([]byte, 0, 9+len(hold))
	k = append(k, tagExpiry)
	k = binary.BigEndian.AppendUint64(k, uint64(expiresAtMs))
	return append(k, hold...)
}

// upperBound is the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xff {
			u[i]++
			return u[:i+1]
		}
	}
	return nil
}

package fsm

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"boxoffice"
)

// Benchmarks of the hot paths: applying holds (one per entry, and 64 per
// entry as a leader batches them), encoding a hold, and reading the seat
// map of a 100,000-seat event. Run with
//
//	go test ./fsm -run XXX -bench . -benchtime 2000x

const (
	benchSections    = 20
	benchRows        = 100
	benchSeatsPerRow = 50
	benchCapacity    = benchSections * benchRows * benchSeatsPerRow // 100,000
)

// benchEvent is a 100,000-seat event: 20 sections of 100 rows of 50 seats,
// in four categories. Its cap never binds: every hold has its own buyer.
func benchEvent(id string) boxoffice.Event {
	ev := boxoffice.Event{
		ID: id, Name: "Bench " + id, Organiser: "org",
		Limits: boxoffice.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 3600},
	}
	for c := range 4 {
		ev.Categories = append(ev.Categories, boxoffice.Category{ID: fmt.Sprintf("c%d", c), Name: "Cat", PriceCents: int64(1000 * (c + 1))})
	}
	for s := range benchSections {
		ev.Venue.Sections = append(ev.Venue.Sections, boxoffice.Section{
			ID: fmt.Sprintf("S%d", s), Category: fmt.Sprintf("c%d", s%4), Rows: benchRows, SeatsPerRow: benchSeatsPerRow,
		})
	}
	return ev
}

func benchSeatID(idx int) string {
	s, rel := idx/(benchRows*benchSeatsPerRow), idx%(benchRows*benchSeatsPerRow)
	return fmt.Sprintf("S%d-%d-%d", s, rel/benchSeatsPerRow+1, rel%benchSeatsPerRow+1)
}

// benchHolds returns n holds of two adjacent seats each, spread at random
// over as many 100,000-seat events as they need (ids ev0, ev1, ...), each
// by a buyer of its own; and the number of events used.
func benchHolds(n int) ([]*Hold, int) {
	const pairs = benchCapacity / 2
	r := rand.New(rand.NewPCG(1, 2))
	holds := make([]*Hold, 0, n)
	events := 0
	for len(holds) < n {
		perm := r.Perm(pairs)
		for _, p := range perm[:min(pairs, n-len(holds))] {
			holds = append(holds, &Hold{
				Event: fmt.Sprintf("ev%d", events),
				Buyer: fmt.Sprintf("u%d", len(holds)),
				Seats: []string{benchSeatID(2 * p), benchSeatID(2*p + 1)},
			})
		}
		events++
	}
	return holds, events
}

// benchStore opens a store with the given number of 100,000-seat events.
func benchStore(b *testing.B, events int) (*Store, uint64) {
	s := newStore(b)
	var cmds []Command
	for e := range events {
		cmds = append(cmds, &CreateEvent{Event: benchEvent(fmt.Sprintf("ev%d", e))})
	}
	rs := applyOne(b, s, 1, 1000, cmds...)
	for _, r := range rs {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	return s, 1
}

// mustApply applies entries and fails the benchmark on a halt or on any
// rejected command.
func mustApply(b *testing.B, s *Store, entries []Entry) {
	rs, err := s.ApplyEntries(entries)
	if err != nil {
		b.Fatal(err)
	}
	for _, entry := range rs {
		for _, r := range entry {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}

// BenchmarkApplyHold: one entry of one 2-seat hold per ApplyEntries call.
func BenchmarkApplyHold(b *testing.B) {
	holds, events := benchHolds(b.N)
	s, index := benchStore(b, events)
	entries := make([]Entry, b.N)
	for i, h := range holds {
		entries[i] = entryOf(index+1+uint64(i), 2000+int64(i), h)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		mustApply(b, s, entries[i:i+1])
	}
}

// BenchmarkApplyHoldBatch64: one entry of 64 2-seat holds per ApplyEntries
// call, as the leader coalesces concurrent proposals. ns/op is per entry;
// ns/hold is per command.
func BenchmarkApplyHoldBatch64(b *testing.B) {
	const perEntry = 64
	holds, events := benchHolds(b.N * perEntry)
	s, index := benchStore(b, events)
	entries := make([]Entry, b.N)
	for i := range entries {
		cmds := make([]Command, perEntry)
		for j := range cmds {
			cmds[j] = holds[i*perEntry+j]
		}
		entries[i] = entryOf(index+1+uint64(i), 2000+int64(i), cmds...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		mustApply(b, s, entries[i:i+1])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perEntry), "ns/hold")
}

// BenchmarkApplyIdempotentHoldBatch64: BenchmarkApplyHoldBatch64 with every
// hold wrapped, as clients send them, with a new Idempotency-Key of its
// buyer: the look-up of the key (absent) and the record written. A buyer
// makes 4 holds.
func BenchmarkApplyIdempotentHoldBatch64(b *testing.B) {
	const perEntry = 64
	holds, events := benchHolds(b.N * perEntry)
	s, index := benchStore(b, events)
	hash := make([]byte, IdempotencyHashLen)
	entries := make([]Entry, b.N)
	for i := range entries {
		cmds := make([]Command, perEntry)
		for j := range cmds {
			// A buyer holds 4 × 2 seats (the limit is 8), with a key each.
			h := holds[i*perEntry+j]
			h.Buyer = fmt.Sprintf("u%d", (i*perEntry+j)/4)
			cmds[j] = &Idempotent{Subject: h.Buyer, Key: fmt.Sprintf("key-%d-%d", i, j), Hash: hash, Command: h}
		}
		entries[i] = entryOf(index+1+uint64(i), 2000+int64(i), cmds...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		mustApply(b, s, entries[i:i+1])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perEntry), "ns/hold")
}

// BenchmarkEncodeHold: the encoding of one 2-seat hold command.
func BenchmarkEncodeHold(b *testing.B) {
	h := &Hold{Event: "arena-2026-12-01", Buyer: "user-123456", Seats: []string{"S7-42-17", "S7-42-18"}}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n += len(EncodeCommand(h))
	}
	if n == 0 {
		b.Fatal("nothing encoded")
	}
}

// BenchmarkDecodeHold: the decoding of one 2-seat hold command.
func BenchmarkDecodeHold(b *testing.B) {
	raw := EncodeCommand(&Hold{Event: "arena-2026-12-01", Buyer: "user-123456", Seats: []string{"S7-42-17", "S7-42-18"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeats100k: the whole seat map of a 100,000-seat event of which
// 10,000 seats are taken (held, and some of those holds bought).
func BenchmarkSeats100k(b *testing.B) {
	s := seats100k(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		seats, err := s.Seats("ev0", SeatFilter{})
		if err != nil {
			b.Fatal(err)
		}
		if len(seats) != benchCapacity {
			b.Fatalf("%d seats", len(seats))
		}
	}
}

// BenchmarkReport100k: the sales report of that event, from its counters,
// against BenchmarkCounts100k, the per-category counts by a scan of its
// taken seats.
func BenchmarkReport100k(b *testing.B) {
	s := seats100k(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rep, err := s.Report("ev0")
		if err != nil {
			b.Fatal(err)
		}
		if rep.Total.Held+rep.Total.Sold != 10_000 {
			b.Fatalf("%+v", rep.Total)
		}
	}
}

func BenchmarkCounts100k(b *testing.B) {
	s := seats100k(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Counts("ev0"); err != nil {
			b.Fatal(err)
		}
	}
}

// seats100k is a store with a 100,000-seat event of which 10,000 seats are
// held, a quarter of those bought.
func seats100k(b *testing.B) *Store {
	const taken = 10_000
	holds, _ := benchHolds(taken / 2)
	s, index := benchStore(b, 1)
	for i := 0; i < len(holds); i += 64 {
		cmds := make([]Command, 0, 64)
		for _, h := range holds[i:min(i+64, len(holds))] {
			cmds = append(cmds, h)
		}
		index++
		mustApply(b, s, []Entry{entryOf(index, 2000, cmds...)})
	}
	for i := 0; i < len(holds); i += 4 { // buy a quarter of the holds
		index++
		mustApply(b, s, []Entry{entryOf(index, 2000, &Purchase{Hold: fmt.Sprintf("h_0.%d.%d", 2+i/64, i%64), Buyer: holds[i].Buyer})})
	}
	counts, err := s.Counts("ev0")
	if err != nil {
		b.Fatal(err)
	}
	var held, sold int
	for _, c := range counts {
		held, sold = held+c.Held, sold+c.Sold
	}
	if held+sold != taken || sold != taken/4 {
		b.Fatalf("setup: %d held, %d sold", held, sold)
	}
	return s
}

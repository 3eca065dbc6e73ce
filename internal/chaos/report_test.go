package chaos

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"boxoffice/client"
)

func seatMap(index uint64, states ...string) client.SeatMap {
	m := client.SeatMap{Index: index}
	for i, s := range states {
		m.Seats = append(m.Seats, client.Seat{ID: string(rune('a' + i)), State: s})
	}
	return m
}

// TestDiffSeats: replicas read at different indexes may differ only by
// holds that expired in between.
func TestDiffSeats(t *testing.T) {
	const free, held, sold = client.SeatFree, client.SeatHeld, client.SeatSold
	assert.Empty(t, diffSeats(seatMap(10, free, held, sold), seatMap(10, free, held, sold)))
	assert.Empty(t, diffSeats(seatMap(10, free, held, sold), seatMap(12, free, free, sold)), "expired later")
	assert.Empty(t, diffSeats(seatMap(12, free, free, sold), seatMap(10, free, held, sold)), "either order")
	assert.Contains(t, diffSeats(seatMap(10, free, held, sold), seatMap(10, free, free, sold)), "seat b", "same index, other state")
	assert.Contains(t, diffSeats(seatMap(10, free, held, sold), seatMap(12, free, held, free)), "seat c is sold")
	assert.Contains(t, diffSeats(seatMap(10, free, held, sold), seatMap(12, held, held, sold)), "seat a is free")
	assert.Contains(t, diffSeats(seatMap(10, free), seatMap(10, free, free)), "1 seats against 2")
}

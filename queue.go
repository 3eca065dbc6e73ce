package boxoffice

import "fmt"

// The waiting room of a protected on-sale (issue 9). An organiser protects
// an event's sale with an opening time; from then on a buyer must join the
// event's queue and be admitted before holding its seats. Admission is in
// join order, except that those who joined before the opening are shuffled
// at the opening (from a seed the leader writes into the log), and it is
// paced by the seats still free.

// Limits of the waiting room.
const (
	// QueueJoinersMax bounds the places of one event's queue.
	QueueJoinersMax = 50_000_000
	// PassTTLMax bounds how long an admission pass stays valid (seconds).
	PassTTLMax = 3600
	// DefaultPassTTL is an admission pass's validity when the organiser
	// names none (seconds).
	DefaultPassTTL = 600
	// AdmitPercentMax bounds the admitted-but-not-yet-holding buyers per
	// hundred free seats.
	AdmitPercentMax = 1000
	// DefaultAdmitPercent admits one buyer per free seat.
	DefaultAdmitPercent = 100
	// AdmitPerStepMax bounds the buyers one admission step admits.
	AdmitPerStepMax = 10_000
)

// QueueConfig is how an organiser protects an event's on-sale.
type QueueConfig struct {
	// OpensAtMs is the opening: joins before it are shuffled at it, and
	// nobody is admitted before it.
	OpensAtMs int64
	// PassTTLSeconds is how long an admission pass is valid.
	PassTTLSeconds int
	// AdmitPercent is how many admitted buyers who hold nothing yet the
	// queue keeps per hundred free seats.
	AdmitPercent int
}

// Validate checks the config's ranges.
func (c QueueConfig) Validate() error {
	switch {
	case c.OpensAtMs < 0 || c.OpensAtMs > 1<<53:
		return Errorf(CodeInvalidArgument, "opensAt is out of range")
	case c.PassTTLSeconds < 1 || c.PassTTLSeconds > PassTTLMax:
		return Errorf(CodeInvalidArgument, "passTTLSeconds must be 1..%d", PassTTLMax)
	case c.AdmitPercent < 1 || c.AdmitPercent > AdmitPercentMax:
		return Errorf(CodeInvalidArgument, "admitPercent must be 1..%d", AdmitPercentMax)
	}
	return nil
}

// Queue is the state of an event's waiting room.
type Queue struct {
	Event  string
	Config QueueConfig
	// Opened is set once the leader recorded the opening; OpenedAtMs is
	// when, by the state machine's clock.
	Opened     bool
	OpenedAtMs int64
	// Joined counts places given; Early those given before the opening
	// (the shuffled group).
	Joined int64
	Early  int64
	// Admitted counts buyers admitted: the admission cursor. Admission
	// ranks below it are admitted.
	Admitted int64
	// Outstanding counts admitted buyers whose pass has not expired and
	// who hold nothing yet.
	Outstanding int64
	// SoldOut is set while every seat of the event is sold.
	SoldOut bool
}

// Waiting is the number of places not admitted yet.
func (q *Queue) Waiting() int64 { return q.Joined - q.Admitted }

// PlaceState is where a buyer stands in a queue.
type PlaceState uint8

const (
	// PlaceWaiting: not admitted yet (before the opening, the rank is not
	// known yet).
	PlaceWaiting PlaceState = iota + 1
	// PlaceAdmitted: admitted; the pass is valid until PassExpiresAtMs.
	PlaceAdmitted
	// PlaceExpired: admitted, but the pass has expired.
	PlaceExpired
	// PlaceSoldOut: not admitted, and every seat is sold.
	PlaceSoldOut
)

func (s PlaceState) String() string {
	switch s {
	case PlaceWaiting:
		return "waiting"
	case PlaceAdmitted:
		return "admitted"
	case PlaceExpired:
		return "expired"
	case PlaceSoldOut:
		return "sold_out"
	}
	return fmt.Sprintf("PlaceState(%d)", uint8(s))
}

// Place is one buyer's place in an event's queue.
type Place struct {
	Event string
	Buyer string
	// Seq is the place in join order, from 0.
	Seq int64
	// Rank is the place in admission order, from 0: Seq, but for the
	// early group, shuffled at the opening. -1 before the opening for the
	// early group.
	Rank  int64
	Early bool
	State PlaceState
	// Ahead is how many not yet admitted are before this place (0 for an
	// admitted place, -1 while the rank is not known).
	Ahead           int64
	AdmittedAtMs    int64
	PassExpiresAtMs int64
}

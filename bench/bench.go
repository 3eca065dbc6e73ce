// Package bench is the on-sale load harness behind `boxoffice bench`: virtual
// users that take seats from a seat map the way buyers do, HDR latency per
// operation, per-second series, CPU and load figures, an invariant check of
// the end state with strong reads, and the reports (a summary, JSON, HTML).
//
// # The onsale workload
//
// The bench creates one event of Config.Seats seats and starts Config.Users
// virtual users. Each user loops: it takes the process's shared seat map
// (refreshed at most once per Config.SeatMapMaxAge, so at most that stale
// plus one fetch), picks 1–4 free seats with a hot spot (Config.HotShare of
// the picks fall in the first Config.HotFraction of the seats in layout
// order, the best ones), holds them, then buys them with probability
// Config.BuyProbability (with an Idempotency-Key) or releases them. A 409
// seat_unavailable is a conflict: the user remembers those seats as taken
// and picks again, up to Config.RetriesPerMap times per seat map, then
// waits for a newer map. The run ends when every seat is sold or after
// Config.Duration; users then finish the iteration they are in (bounded by
// Config.Grace), so that no hold is left behind by the bench itself. `rush`
// is the same with every user starting at the same instant instead of
// arriving over Config.Ramp.
//
// `best-available` is onsale with users that name no seat: each holds a
// quantity (1–4, adjacent for half of the holds) in a category (the first,
// best one with probability Config.HotShare), and the server picks the
// seats. A 409 seat_unavailable is a conflict: the category is sold out or
// too fragmented for the request, so the user asks that category for one
// seat next, and after a miss at one seat tries the other categories; when
// every category missed it waits for the next seat map (which also tells
// the bench when the event is sold out). `multi` runs Config.Events events
// of Seats/Events seats at once (named <event>-0, <event>-1, …, so that they
// hash to different shards where they can), user i buying in event i mod
// Events with the onsale loop; the run is sold out when every event is, and
// the invariant check runs per event.
//
// A buyer may own at most the event's maxSeatsPerBuyer seats (held or
// bought), so each user buys under a series of identities: when its current
// one is full it mints a new token (Config.Mint, the cluster's secret).
//
// # Honesty
//
// Users are closed-loop (a user sends its next request when the previous one
// answered), so latencies are those of a saturated system, not of a fixed
// arrival rate; the per-second series show how throughput and latency moved.
// Every write's outcome is known before the invariant check: a write whose
// answer was lost is sent again with the same Idempotency-Key, which returns
// the first answer, and what stays unknown is reported, never guessed.
//
// The invariant check (Check) compares what the bench was acknowledged with
// a strong read of the seat map and of every acknowledged order; Run's
// Result says whether it passed, and `boxoffice bench` exits non-zero if not.
package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"boxoffice"
)

// Workloads.
const (
	WorkloadOnsale        = "onsale"
	WorkloadRush          = "rush"
	WorkloadBestAvailable = "best-available"
	WorkloadMulti         = "multi"
)

// Workloads lists the workloads, for flags and errors.
var Workloads = []string{WorkloadOnsale, WorkloadRush, WorkloadBestAvailable, WorkloadMulti}

// Limits on a Config.
const (
	SeatsMax          = 200_000
	UsersMax          = 10_000
	DurationMax       = 24 * time.Hour
	PicksMaxMax       = 32 // boxoffice.SeatsPerHoldMax
	RetriesPerMapMax  = 1000
	VerifyParallelMax = 256
	EventsMax         = 64
	// excludedMax bounds the seats a user remembers as taken; past it the
	// user forgets them all and waits for a newer seat map.
	excludedMax = 256
	// iterationsPerSeatMax bounds a user's iterations: a run never needs
	// more than a few attempts per seat of the event.
	iterationsPerSeatMax = 64
	// resolveTries bounds how many times a write whose outcome is unknown
	// is sent again with its key, inline and at the end of the run.
	resolveTries = 3
)

// Config configures a run.
type Config struct {
	// System is the store under test; nil is boxoffice at Targets (the
	// Go client, with Token and Mint).
	System System
	// Targets are the base URLs of the cluster's nodes. Users are spread
	// over them evenly (user i starts at node i mod n), as a load balancer
	// would spread buyers. With a System, they only name its servers in
	// the reports.
	Targets []string
	// SpreadWrites makes users send writes to the node they start at
	// (which forwards them to the leader) instead of following the route
	// hints straight to the leader, as the Go client does by default.
	SpreadWrites bool
	// Workload is one of Workloads.
	Workload string
	// Events is how many events multi runs at once (others run one).
	Events int
	// Seats is the size of the event the bench creates.
	Seats int
	// Users is the number of virtual users.
	Users int
	// Duration bounds the run; it ends earlier when every seat is sold.
	Duration time.Duration
	// Ramp is how long users take to arrive in onsale (user i starts at
	// i×Ramp/Users); rush ignores it.
	Ramp time.Duration
	// HotFraction is the share of seats, first in layout order, that form
	// the hot set; HotShare is the share of picks that land in it.
	HotFraction float64
	HotShare    float64
	// BuyProbability is the chance a user buys its hold rather than
	// releasing it.
	BuyProbability float64
	// PicksMin and PicksMax bound the seats a user takes at once.
	PicksMin, PicksMax int
	// MaxSeatsPerBuyer and HoldTTL are the event's limits.
	MaxSeatsPerBuyer int
	HoldTTL          time.Duration
	// SeatMapMaxAge is how often the shared seat map is refreshed.
	SeatMapMaxAge time.Duration
	// RetriesPerMap bounds the conflicts a user retries against one seat
	// map before it waits for a newer one.
	RetriesPerMap int
	// Grace bounds how long users may finish their iteration after the run
	// ended, and how long the end-of-run resolution of unknown writes takes.
	Grace time.Duration
	// VerifyParallel is how many strong order reads the invariant check
	// runs at once.
	VerifyParallel int
	// CheckTimeout bounds the end of a run: resolving unknown writes and
	// the strong reads of the invariant check (and never past the caller's
	// deadline). A check that cannot finish is an error, not a pass.
	CheckTimeout time.Duration
	// Seed seeds every user's random choices (user i uses Seed and i).
	Seed uint64
	// EventID is the id of the event to create; empty picks one from the
	// time.
	EventID string
	// PaymentMethod is sent with every purchase.
	PaymentMethod string
	// Token is the bearer token that creates the event (organiser or
	// admin); empty mints one with Mint.
	Token string
	// Mint signs a token for subject with role ("buyer", "organiser") with
	// the cluster's secret. Required: buyers are minted as the run goes.
	Mint func(subject, role string) (string, error)
	// ServerPIDs are the servers' processes on this machine, whose CPU the
	// bench reads from /proc; empty when the servers are elsewhere.
	ServerPIDs []int
	// ServerNames name ServerPIDs in the reports (optional, same order).
	ServerNames []string
	// Progress, when set, receives a one-line progress every second
	// (carriage return, no newline): for a terminal.
	Progress io.Writer
	// Log, when set, receives a line per phase (setup, load, check).
	Log io.Writer
	// Notes describe the servers for the reports ("local 3-node cluster,
	// payment latency 50ms"); the bench only repeats them.
	Notes []string
}

// DefaultConfig returns the onsale defaults; Targets and Mint are
// left for the caller.
func DefaultConfig() Config {
	return Config{
		Workload:         WorkloadOnsale,
		Events:           4,
		Seats:            100_000,
		Users:            256,
		Duration:         2 * time.Minute,
		Ramp:             2 * time.Second,
		HotFraction:      0.2,
		HotShare:         0.8,
		BuyProbability:   0.9,
		PicksMin:         1,
		PicksMax:         4,
		MaxSeatsPerBuyer: 8,
		HoldTTL:          60 * time.Second,
		SeatMapMaxAge:    time.Second,
		RetriesPerMap:    8,
		Grace:            15 * time.Second,
		VerifyParallel:   32,
		CheckTimeout:     5 * time.Minute,
		Seed:             1,
		PaymentMethod:    "pm_card_visa",
	}
}

// Validate lists every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("bench: "+format, args...)) }
	if len(c.Targets) == 0 && c.System == nil {
		add("Targets: at least one node URL required")
	}
	if !slices.Contains(Workloads, c.Workload) {
		add("Workload must be one of %s, not %q", strings.Join(Workloads, ", "), c.Workload)
	}
	if c.Workload == WorkloadMulti && (c.Events < 1 || c.Events > EventsMax || c.Events > c.Seats) {
		add("Events %d out of range 1..%d (and at most Seats)", c.Events, EventsMax)
	}
	if c.Seats < 1 || c.Seats > SeatsMax {
		add("Seats %d out of range 1..%d", c.Seats, SeatsMax)
	}
	if c.Users < 1 || c.Users > UsersMax {
		add("Users %d out of range 1..%d", c.Users, UsersMax)
	}
	if c.Duration <= 0 || c.Duration > DurationMax {
		add("Duration %v out of range (0, %v]", c.Duration, DurationMax)
	}
	if c.Ramp < 0 || c.Ramp > c.Duration {
		add("Ramp %v out of range [0, Duration]", c.Ramp)
	}
	if !(c.HotFraction > 0 && c.HotFraction <= 1) {
		add("HotFraction %v out of range (0, 1]", c.HotFraction)
	}
	if !(c.HotShare >= 0 && c.HotShare <= 1) {
		add("HotShare %v out of range [0, 1]", c.HotShare)
	}
	if !(c.BuyProbability >= 0 && c.BuyProbability <= 1) {
		add("BuyProbability %v out of range [0, 1]", c.BuyProbability)
	}
	if c.PicksMin < 1 || c.PicksMax < c.PicksMin || c.PicksMax > PicksMaxMax {
		add("PicksMin %d and PicksMax %d: need 1 ≤ PicksMin ≤ PicksMax ≤ %d", c.PicksMin, c.PicksMax, PicksMaxMax)
	}
	if c.MaxSeatsPerBuyer < c.PicksMax || c.MaxSeatsPerBuyer > 1000 {
		add("MaxSeatsPerBuyer %d out of range PicksMax..1000", c.MaxSeatsPerBuyer)
	}
	if c.HoldTTL < time.Second || c.HoldTTL > time.Hour || c.HoldTTL%time.Second != 0 {
		add("HoldTTL %v must be whole seconds in [1s, 1h]", c.HoldTTL)
	}
	if c.SeatMapMaxAge < 10*time.Millisecond || c.SeatMapMaxAge > time.Minute {
		add("SeatMapMaxAge %v out of range [10ms, 1m]", c.SeatMapMaxAge)
	}
	if c.RetriesPerMap < 1 || c.RetriesPerMap > RetriesPerMapMax {
		add("RetriesPerMap %d out of range 1..%d", c.RetriesPerMap, RetriesPerMapMax)
	}
	if c.Grace < time.Second || c.Grace > 10*time.Minute {
		add("Grace %v out of range [1s, 10m]", c.Grace)
	}
	if c.CheckTimeout < time.Second || c.CheckTimeout > time.Hour {
		add("CheckTimeout %v out of range [1s, 1h]", c.CheckTimeout)
	}
	if c.VerifyParallel < 1 || c.VerifyParallel > VerifyParallelMax {
		add("VerifyParallel %d out of range 1..%d", c.VerifyParallel, VerifyParallelMax)
	}
	if c.EventID != "" && !boxoffice.ValidID(c.EventID) {
		add("EventID %q must match [A-Za-z0-9._-]{1,64}", c.EventID)
	}
	if c.Mint == nil && c.System == nil {
		add("Mint is required: buyers are minted with the cluster's secret (--auth-secret)")
	}
	if len(c.ServerNames) != 0 && len(c.ServerNames) != len(c.ServerPIDs) {
		add("ServerNames must name every ServerPID or be empty")
	}
	return errors.Join(errs...)
}

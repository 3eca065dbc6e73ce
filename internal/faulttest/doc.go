// Package faulttest runs on-sales against in-process clusters of three and
// five nodes while a nemesis injects one fault at a time, and checks every
// round's history (internal/history): linearizability of seat ownership,
// no double sale, every acknowledged write present, no seat lost, every
// paid order charged once.
//
// A round: a fresh event of small seat groups (sections of four seats);
// 16–64 recording clients, each a buyer, spread over every node, hold 1–4
// explicit seats of one group, release some or all, purchase (some with a
// declining card), and read holds and groups strongly. Meanwhile the
// nemesis picks one fault: crash and restart a node, partition the cluster
// (a random split, the leader isolated, the leader mute one way), slow the
// leader's links, transfer leadership, or add a member and remove one. Then
// it heals, waits for every shard to have a leader, learns the outcomes
// that were unknown (resending with their idempotency keys), reads the
// final state and checks.
//
// Everything random comes from one seed, printed at the start; round r uses
// its own stream derived from (seed, r), so a failing round's faults and
// workload choices are replayed by
//
//	BOXOFFICE_SEED=<seed> BOXOFFICE_FAULT_FROM=<r> go test -run <Test> ./internal/faulttest
//
// (the timing of a real cluster is not replayed, so a race may need a few
// runs). Settings, all optional:
//
//	BOXOFFICE_SEED          the seed (default: from the clock)
//	BOXOFFICE_FAULT_ROUNDS  rounds per test (default: a few, for make test)
//	BOXOFFICE_FAULT_FROM    the first round's number (default 0)
//	BOXOFFICE_FAULT_CLIENTS clients per round, 16..64 (default 16)
//	BOXOFFICE_FAULT_KINDS   comma-separated fault kinds to draw from
//	BOXOFFICE_ARTIFACTS     where failed histories are saved
package faulttest

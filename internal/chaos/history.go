package chaos

import "context"

// History is where a linearizability checker plugs in: it sees every
// exchange of the load as it ends (with request and answer bodies, which
// the proxies keep only when a History is set), and gives its verdict once
// the load has stopped and the cluster has settled.
//
// internal/history (a porcupine recorder and checker of seat ownership,
// being written on another branch) is meant to satisfy it; until it is
// wired into cmd/boxoffice's chaos command, Config.History is nil and the
// report says the verdict was not checked.
type History interface {
	Observer
	// Check decides whether the observed history is linearizable.
	Check(ctx context.Context) (Verdict, error)
}

// Verdict is a History's answer.
type Verdict struct {
	// Linearizable is the verdict; Detail says what was checked (ops,
	// keys, time taken) or, when not linearizable, where it broke.
	Linearizable bool   `json:"linearizable"`
	Detail       string `json:"detail"`
}

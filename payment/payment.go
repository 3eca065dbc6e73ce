// Package payment will hold the payment gateways (a simulated one with
// latency and failure injection, real providers behind the same interface)
// and the checkout saga that records every step through the log.
//
// For now it holds only the interface the saga will propose through; the
// gateway interface itself, boxoffice.PaymentGateway, is in the root package
// because several packages share it.
package payment

import (
	"context"

	"boxoffice/fsm"
)

// Proposer replicates a command through a shard's log. *raftnode.Node
// implements it.
type Proposer interface {
	Propose(ctx context.Context, shard int, c fsm.Command) (fsm.Result, error)
}

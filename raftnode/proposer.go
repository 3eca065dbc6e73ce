package raftnode

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"boxoffice"
	"boxoffice/fsm"
)

// proposer coalesces concurrent proposals to one shard into log entries.
//
// Callers enqueue encoded commands. The batching loop takes whatever is
// queued — at least one command, at most BatchCommandsMax commands and
// BatchBytesMax bytes — stamps it with the clock, and hands it to Raft
// without waiting for the commit; a completer goroutine waits for the entries
// in order and gives each caller its own result. While one entry is being
// committed the next one fills up, so batches grow with load and an idle
// shard adds no wait.
type proposer struct {
	raft  *raft.Raft
	cfg   *Config
	shard int
	obs   Observer
	// note learns every entry's outcome, Raft's own error or nil (nil
	// func: nobody).
	note func(error)

	queue    chan *proposal
	inflight chan inflightEntry
	stop     chan struct{}
	// exited is closed once both loops have returned: every proposal they
	// took has its answer in its done channel by then.
	exited chan struct{}
	wg     sync.WaitGroup
}

type proposal struct {
	cmd  []byte
	done chan proposalResult
}

type proposalResult struct {
	res fsm.Result
	err error
}

type inflightEntry struct {
	future raft.ApplyFuture
	props  []*proposal
	at     time.Time
}

// proposalQueueMax bounds proposals waiting to be batched.
const proposalQueueMax = 16384

func newProposer(r *raft.Raft, cfg *Config, shard int, note func(error)) *proposer {
	if note == nil {
		note = func(error) {}
	}
	p := &proposer{
		raft:     r,
		note:     note,
		cfg:      cfg,
		shard:    shard,
		obs:      observerOf(cfg),
		queue:    make(chan *proposal, proposalQueueMax),
		inflight: make(chan inflightEntry, cfg.InflightEntriesMax),
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	p.wg.Add(2)
	go p.batchLoop()
	go p.completeLoop()
	return p
}

var donePool = sync.Pool{New: func() any { return make(chan proposalResult, 1) }}

// propose submits one encoded command and waits for its result.
func (p *proposer) propose(ctx context.Context, cmd []byte) (fsm.Result, error) {
	pr := &proposal{cmd: cmd, done: donePool.Get().(chan proposalResult)}
	select {
	case p.queue <- pr:
	case <-ctx.Done():
		return fsm.Result{}, ctxErr(ctx)
	case <-p.stop:
		return fsm.Result{}, errShutdown
	}
	// Once queued, the command may be committed whatever we do: wait for the
	// answer unless the caller gives up (then the answer is dropped, and
	// the caller must treat the outcome as unknown).
	select {
	case r := <-pr.done:
		donePool.Put(pr.done)
		return r.res, r.err
	case <-ctx.Done():
		return fsm.Result{}, ctxErr(ctx)
	case <-p.exited:
		// Queued as the proposer stopped: if the loops took it, its
		// answer is waiting; if not, it was never proposed and nobody
		// will answer it.
		select {
		case r := <-pr.done:
			donePool.Put(pr.done)
			return r.res, r.err
		default:
			return fsm.Result{}, errShutdown
		}
	}
}

var errShutdown = boxoffice.Errorf(boxoffice.CodeUnavailable, "node is shutting down")

func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return boxoffice.Errorf(boxoffice.CodeTimeout, "proposal timed out; its outcome is unknown")
	}
	return ctx.Err()
}

func (p *proposer) batchLoop() {
	defer p.wg.Done()
	defer close(p.inflight)
	maxCmds, maxBytes := p.cfg.BatchCommandsMax, p.cfg.BatchBytesMax
	if !p.cfg.Batching {
		maxCmds = 1
	}
	var props []*proposal
	var cmds [][]byte
	for {
		var first *proposal
		select {
		case first = <-p.queue:
		case <-p.stop:
			p.drainQueue()
			return
		}
		props, cmds = append(props[:0], first), append(cmds[:0], first.cmd)
		size := len(first.cmd)
	fill:
		for len(props) < maxCmds {
			select {
			case pr := <-p.queue:
				props = append(props, pr)
				cmds = append(cmds, pr.cmd)
				size += len(pr.cmd)
				if size >= maxBytes {
					break fill
				}
			default:
				break fill
			}
		}
		now := time.Now()
		entry := fsm.EncodeEntry(now.UnixMilli(), cmds)
		f := p.raft.Apply(entry, p.cfg.ApplyTimeout)
		p.inflight <- inflightEntry{future: f, props: append([]*proposal(nil), props...), at: now}
	}
}

// drainQueue fails proposals that were queued but never proposed.
func (p *proposer) drainQueue() {
	for {
		select {
		case pr := <-p.queue:
			pr.done <- proposalResult{err: errShutdown}
		default:
			return
		}
	}
}

func (p *proposer) completeLoop() {
	defer p.wg.Done()
	for e := range p.inflight {
		err := e.future.Error()
		var results []fsm.Result
		if err == nil {
			results, _ = e.future.Response().([]fsm.Result)
			if len(results) != len(e.props) {
				err = boxoffice.Errorf(boxoffice.CodeInternal, "entry applied with %d results for %d commands", len(results), len(e.props))
			}
		}
		if err == nil {
			p.obs.EntryCommitted(p.shard, len(e.props), time.Since(e.at))
		}
		p.note(err)
		err = raftErr(err)
		for i, pr := range e.props {
			if err != nil {
				pr.done <- proposalResult{err: err}
			} else {
				pr.done <- proposalResult{res: results[i]}
			}
		}
	}
}

// raftErr maps hashicorp/raft's errors to coded ones. ErrNotLeader and
// ErrLeadershipLost differ: the first means the entry was never appended,
// the second that its fate is unknown.
func raftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return boxoffice.Errorf(boxoffice.CodeNotLeader, "%v", err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return boxoffice.Errorf(boxoffice.CodeUnavailable, "leadership lost before the write committed; its outcome is unknown")
	case errors.Is(err, raft.ErrRaftShutdown):
		return errShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return boxoffice.Errorf(boxoffice.CodeTimeout, "raft queue full")
	}
	return boxoffice.Errorf(boxoffice.CodeInternal, "raft: %v", err)
}

// close stops batching and waits until every proposed entry has an outcome.
func (p *proposer) close() {
	close(p.stop)
	p.wg.Wait()
	close(p.exited)
}

// observerOf returns the config's observer, or one that records nothing.
func observerOf(cfg *Config) Observer {
	if cfg.Observer == nil {
		return nopObserver{}
	}
	return cfg.Observer
}

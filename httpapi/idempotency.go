package httpapi

import (
	"context"
	"crypto/sha256"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/fsm"
)

// Idempotency-Key: every write accepts one. The key and a hash of the
// request are replicated with the command (fsm.Idempotent) and the state
// machine keeps the first result, so a retry — to any node, across a leader
// change — gets the first answer again, and the same key with another
// request gets 422 idempotency_key_reused.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

type idempotency struct {
	subject string
	key     string
	hash    []byte
}

func (i idempotency) on() bool { return i.key != "" }

// readIdempotency reads and checks the request's key, and hashes the
// request (method, URI and body) it must come with.
func readIdempotency(ctx *fasthttp.RequestCtx, p Principal) (idempotency, error) {
	k := ctx.Request.Header.Peek(headerIdempotencyKey)
	if len(k) == 0 {
		return idempotency{}, nil
	}
	if len(k) > boxoffice.IdempotencyKeyLenMax {
		return idempotency{}, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "Idempotency-Key is longer than %d bytes", boxoffice.IdempotencyKeyLenMax)
	}
	for _, c := range k {
		if c < 0x21 || c > 0x7e {
			return idempotency{}, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "Idempotency-Key must be printable ASCII without spaces")
		}
	}
	h := sha256.New()
	h.Write(ctx.Method())
	h.Write([]byte{0})
	h.Write(ctx.RequestURI())
	h.Write([]byte{0})
	h.Write(ctx.PostBody())
	return idempotency{subject: p.Subject, key: string(k), hash: h.Sum(nil)[:fsm.IdempotencyHashLen]}, nil
}

// storedAnswer returns the recorded answer of the request's key, if the
// shard's state machine holds one, after a read barrier (so that a record
// committed by an earlier leader is applied here), marked replayed.
func (s *Server) storedAnswer(ctx *fasthttp.RequestCtx, cctx context.Context, shard int, idem idempotency) (fsm.Result, bool, error) {
	if err := s.node.ReadBarrier(cctx, shard); err != nil {
		return fsm.Result{}, false, err
	}
	res, ok, err := s.node.Store(shard).Idempotency(idem.subject, idem.key, idem.hash)
	if err != nil || !ok {
		return fsm.Result{}, false, err
	}
	ctx.Response.Header.Set(headerReplayed, "true")
	return res, true, nil
}

// storedOr answers a keyed write that a check refused with the write's
// stored answer, if its first try committed one, and with the refusal
// otherwise. For checks that may change between a write's tries — an
// admission pass that expired, a venue given a new version, a grant
// revoked after the write it allowed — so that the same key and body get
// the first answer again, as every write promises. It runs on the shard's
// leader (a read barrier), and only once a check has refused.
func (s *Server) storedOr(ctx *fasthttp.RequestCtx, cctx context.Context, shard int, idem idempotency, refusal error) (fsm.Result, error) {
	if !idem.on() {
		return fsm.Result{}, refusal
	}
	res, ok, err := s.storedAnswer(ctx, cctx, shard, idem)
	if err != nil {
		return fsm.Result{}, err
	}
	if !ok {
		return fsm.Result{}, refusal
	}
	return res, res.Err
}

// proposeIdem proposes c, wrapped for idempotency when the request has a
// key, marks a replayed answer, and turns a rejection into an error.
func (s *Server) proposeIdem(ctx *fasthttp.RequestCtx, cctx context.Context, shard int, idem idempotency, c fsm.Command) (fsm.Result, error) {
	if idem.on() {
		c = &fsm.Idempotent{Subject: idem.subject, Key: idem.key, Hash: idem.hash, Command: c}
	}
	res, err := s.node.Propose(cctx, shard, c)
	if err != nil {
		return res, err
	}
	if res.Replayed {
		ctx.Response.Header.Set(headerReplayed, "true")
	}
	return res, res.Err
}

package httpapi

import (
	"context"
	"net"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"boxoffice"
	"boxoffice/raftnode"
)

type clusterJSON struct {
	Node   string            `json:"node"`
	Nodes  []nodeJSON        `json:"nodes"`
	Shards []raftnode.Status `json:"shards"`
}

type nodeJSON struct {
	boxoffice.Node
	Voter bool  `json:"voter"`
	Leads []int `json:"leads"`
}

func (s *Server) clusterStatus(ctx *fasthttp.RequestCtx) {
	members, err := s.node.Members()
	if err != nil {
		writeError(ctx, err)
		return
	}
	shards := s.node.Status()
	out := clusterJSON{Node: s.node.ID(), Shards: shards}
	for _, m := range members {
		n := nodeJSON{Node: m, Leads: []int{}}
		for _, sh := range shards {
			n.Voter = n.Voter || slices.Contains(sh.Voters, m.ID)
			if sh.Leader == m.ID {
				n.Leads = append(n.Leads, sh.ID)
			}
		}
		out.Nodes = append(out.Nodes, n)
	}
	writeJSON(ctx, 200, out)
}

// shardParam reads the optional ?shard= of membership routes. A request
// without it acts on every shard: the node that receives it forwards one
// request per shard to that shard's leader.
func parseShardParam(ctx *fasthttp.RequestCtx, shards int) (shard int, all bool, err error) {
	v := ctx.QueryArgs().Peek("shard")
	if len(v) == 0 {
		return 0, true, nil
	}
	n, perr := strconv.Atoi(string(v))
	if perr != nil || n < 0 || n >= shards {
		return 0, false, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "shard must be 0..%d", shards-1)
	}
	return n, false, nil
}

func validAddr(a string) bool {
	host, port, err := net.SplitHostPort(a)
	return err == nil && host != "" && port != "" && len(a) <= 255
}

// readMemberRequest reads the body of POST /v1/cluster/members.
func readMemberRequest(ctx *fasthttp.RequestCtx) (boxoffice.Node, error) {
	var m boxoffice.Node
	if err := readJSON(ctx, &m); err != nil {
		return m, err
	}
	if !boxoffice.ValidID(m.ID) || !validAddr(m.RaftAddr) || !validAddr(m.HTTPAddr) {
		return m, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "id must be a valid id, raftAddr and httpAddr host:port")
	}
	return m, nil
}

func (s *Server) addMember(ctx *fasthttp.RequestCtx) {
	// Membership changes are idempotent in Raft (transfers are not, and
	// are not worth remembering): a key is checked but not recorded.
	if _, _, ok := s.writer(ctx, RoleAdmin); !ok {
		return
	}
	m, err := readMemberRequest(ctx)
	if err != nil {
		writeError(ctx, err)
		return
	}
	s.eachShard(ctx, func(cctx context.Context, shard int) error {
		return s.node.AddMember(cctx, shard, m)
	})
}

func (s *Server) removeMember(ctx *fasthttp.RequestCtx, id string) {
	if !validPathID(ctx, "node", id) {
		return
	}
	// Membership changes are idempotent in Raft (transfers are not, and
	// are not worth remembering): a key is checked but not recorded.
	if _, _, ok := s.writer(ctx, RoleAdmin); !ok {
		return
	}
	s.eachShard(ctx, func(cctx context.Context, shard int) error {
		return s.node.RemoveMember(cctx, shard, id)
	})
}

// eachShard runs a membership change on the leader of one shard (?shard=)
// or of every shard in turn. For every shard it sends the request, with
// ?shard=, to itself through the ordinary write path, which forwards it to
// the leader when needed.
func (s *Server) eachShard(ctx *fasthttp.RequestCtx, fn func(context.Context, int) error) {
	shard, all, err := parseShardParam(ctx, s.node.ShardCount())
	if err != nil {
		writeError(ctx, err)
		return
	}
	if !all {
		s.write(ctx, shard, func(cctx context.Context) error {
			if err := fn(cctx, shard); err != nil {
				return err
			}
			writeJSON(ctx, 200, map[string]any{"shard": shard, "ok": true})
			return nil
		})
		return
	}
	// Fan out one sub-request per shard, each through the write path.
	for i := 0; i < s.node.ShardCount(); i++ {
		sub := &fasthttp.RequestCtx{}
		ctx.Request.CopyTo(&sub.Request)
		sub.Request.URI().QueryArgs().Set("shard", strconv.Itoa(i))
		s.eachShard(sub, fn)
		if sub.Response.StatusCode() != 200 {
			// The failing shard's problem, as its leader answered it.
			sub.Response.CopyTo(&ctx.Response)
			return
		}
	}
	writeJSON(ctx, 200, map[string]any{"shards": s.node.ShardCount(), "ok": true})
}

type transferRequest struct {
	Shard *int   `json:"shard"`
	To    string `json:"to"`
}

// readTransferRequest reads the body of POST /v1/cluster/transfer-leadership.
func readTransferRequest(ctx *fasthttp.RequestCtx, shards int) (transferRequest, error) {
	var in transferRequest
	if err := readJSON(ctx, &in); err != nil {
		return in, err
	}
	if in.Shard == nil || *in.Shard < 0 || *in.Shard >= shards {
		return in, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "shard must be 0..%d", shards-1)
	}
	if in.To != "" && !boxoffice.ValidID(in.To) {
		return in, boxoffice.Errorf(boxoffice.CodeInvalidArgument, "to must be a node id")
	}
	return in, nil
}

func (s *Server) transferLeadership(ctx *fasthttp.RequestCtx) {
	// Membership changes are idempotent in Raft (transfers are not, and
	// are not worth remembering): a key is checked but not recorded.
	if _, _, ok := s.writer(ctx, RoleAdmin); !ok {
		return
	}
	in, err := readTransferRequest(ctx, s.node.ShardCount())
	if err != nil {
		writeError(ctx, err)
		return
	}
	shard := *in.Shard
	s.write(ctx, shard, func(context.Context) error {
		if err := s.node.TransferLeadership(shard, in.To); err != nil {
			return err
		}
		writeJSON(ctx, 200, map[string]any{"shard": shard, "ok": true})
		return nil
	})
}

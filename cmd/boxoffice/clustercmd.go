package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"boxoffice/client"
)

func clusterCmd() *cobra.Command {
	var r remote
	c := &cobra.Command{
		Use:   "cluster",
		Short: "See and change the cluster's membership and leadership (any node answers)",
	}
	r.register(c)
	c.AddCommand(clusterStatusCmd(&r), clusterAddCmd(&r), clusterRemoveCmd(&r), clusterTransferCmd(&r), clusterRebalanceCmd(&r))
	return c
}

func clusterStatusCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the nodes and, per shard, its replicas, leader, term and applied index",
		Example: `  boxoffice cluster status
  boxoffice cluster status --target http://10.0.0.5:8080 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			st, err := cl.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			return r.print(cmd.OutOrStdout(), st, func(w io.Writer) { writeClusterStatus(w, st) })
		},
	}
}

// writeClusterStatus prints the nodes, then the placement as a table of
// shards × nodes: L leads, F follows (votes), - holds no replica.
func writeClusterStatus(w io.Writer, st client.ClusterStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tHTTP\tRAFT\tVOTER\tLEADS\n")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\n", n.ID, n.HTTPAddr, n.RaftAddr, n.Voter, len(n.Leads))
	}
	tw.Flush()
	fmt.Fprintln(w)
	header := []string{"SHARD"}
	for _, n := range st.Nodes {
		header = append(header, n.ID)
	}
	header = append(header, "TERM", "APPLIED")
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, s := range st.Shards {
		row := []string{strconv.Itoa(s.ID)}
		for _, n := range st.Nodes {
			cell := "-"
			switch {
			case s.Leader == n.ID:
				cell = "L"
			case slices.Contains(s.Voters, n.ID):
				cell = "F"
			case slices.Contains(s.Replicas, n.ID):
				cell = "n" // a non-voting replica
			}
			row = append(row, cell)
		}
		row = append(row, strconv.FormatUint(s.Term, 10), strconv.FormatUint(s.AppliedIndex, 10))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nL leader  F voter  n non-voter  - no replica   (as node %s sees it)\n", st.Node)
}

func clusterAddCmd(r *remote) *cobra.Command {
	var m client.Member
	c := &cobra.Command{
		Use:     "add",
		Short:   "Add a started node to every shard (it catches up by snapshot, then votes)",
		Example: `  boxoffice cluster add --id n4 --raft-addr 10.0.0.4:7000 --http-addr 10.0.0.4:8080 --token $ADMIN`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			if err := cl.AddMember(cmd.Context(), m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s\n", m.ID)
			return nil
		},
	}
	c.Flags().StringVar(&m.ID, "id", "", "the new node's id")
	c.Flags().StringVar(&m.RaftAddr, "raft-addr", "", "address the other nodes reach its Raft port at")
	c.Flags().StringVar(&m.HTTPAddr, "http-addr", "", "address its HTTP API is reached at")
	for _, f := range []string{"id", "raft-addr", "http-addr"} {
		c.MarkFlagRequired(f)
	}
	return c
}

func clusterRemoveCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NODE",
		Short:   "Remove a node from every shard (it stops counting for quorum)",
		Example: `  boxoffice cluster remove n3 --token $ADMIN`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			if err := cl.RemoveMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
}

func clusterTransferCmd(r *remote) *cobra.Command {
	var shard int
	var to string
	c := &cobra.Command{
		Use:     "transfer-leadership",
		Short:   "Hand a shard's leadership to another node (any up-to-date voter if --to is empty)",
		Example: `  boxoffice cluster transfer-leadership --shard 2 --to n3 --token $ADMIN`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			if err := cl.TransferLeadership(cmd.Context(), shard, to); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shard %d: leadership transferred\n", shard)
			return nil
		},
	}
	c.Flags().IntVar(&shard, "shard", 0, "the shard")
	c.Flags().StringVar(&to, "to", "", "the node to lead it (empty: let Raft choose)")
	c.MarkFlagRequired("shard")
	return c
}

// leaderMove hands one shard's leadership from one node to another.
type leaderMove struct {
	Shard int    `json:"shard"`
	From  string `json:"from"`
	To    string `json:"to"`
	// Done is set once the move was made (without --dry-run).
	Done bool `json:"done"`
}

// planRebalance returns the leadership moves that spread the shard leaders
// evenly: each node that votes leads floor(S/N) or ceil(S/N) shards, as far
// as the placement allows (a shard's leader must be one of its voters).
// Each move goes from a node that leads at least two more shards than the
// one it goes to, so every move narrows the spread and the plan ends; it is
// deterministic for a given status.
func planRebalance(st client.ClusterStatus) []leaderMove {
	leads := map[string]int{}
	for _, s := range st.Shards {
		for _, v := range s.Voters {
			leads[v] += 0
		}
	}
	leader := make([]string, len(st.Shards))
	for i, s := range st.Shards {
		if s.Leader != "" {
			leader[i] = s.Leader
			leads[s.Leader]++
		}
	}
	var moves []leaderMove
	for range st.Shards { // each shard moves at most once in a good plan; bound the loop anyway
		best, bestGap := -1, 1
		var bestTo string
		for i, s := range st.Shards {
			from := leader[i]
			if from == "" {
				continue
			}
			voters := slices.Sorted(slices.Values(s.Voters))
			for _, v := range voters {
				if gap := leads[from] - leads[v]; v != from && gap > bestGap {
					best, bestGap, bestTo = i, gap, v
				}
			}
		}
		if best < 0 {
			break
		}
		from := leader[best]
		leads[from]--
		leads[bestTo]++
		leader[best] = bestTo
		moves = append(moves, leaderMove{Shard: st.Shards[best].ID, From: from, To: bestTo})
	}
	return moves
}

func clusterRebalanceCmd(r *remote) *cobra.Command {
	var dryRun bool
	c := &cobra.Command{
		Use:   "rebalance",
		Short: "Spread shard leadership evenly over the nodes (each leads about S/N shards)",
		Long: `Print the leadership transfers that spread the shard leaders evenly, so that
each voting node leads about shards/nodes of them, and, without --dry-run,
make them one after the other with the transfer-leadership API.

Nodes also do this on their own, every couple of seconds; this command does
it now, and shows what would change. Only leadership moves: moving replicas
between nodes comes with placement later.`,
		Example: `  boxoffice cluster rebalance --dry-run
  boxoffice cluster rebalance --token $ADMIN -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := r.client()
			if err != nil {
				return err
			}
			st, err := cl.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			moves := planRebalance(st)
			var failed error
			if !dryRun {
				for i := range moves {
					if err := cl.TransferLeadership(cmd.Context(), moves[i].Shard, moves[i].To); err != nil {
						failed = fmt.Errorf("shard %d to %s: %w", moves[i].Shard, moves[i].To, err)
						break
					}
					moves[i].Done = true
				}
			}
			perr := r.print(cmd.OutOrStdout(), struct {
				DryRun bool         `json:"dryRun"`
				Moves  []leaderMove `json:"moves"`
			}{dryRun, moves}, func(w io.Writer) {
				if len(moves) == 0 {
					fmt.Fprintln(w, "leaders are spread evenly: nothing to move")
					return
				}
				for _, m := range moves {
					verb := "would move"
					if m.Done {
						verb = "moved"
					} else if !dryRun {
						verb = "not moved"
					}
					fmt.Fprintf(w, "shard %d: %s leadership %s -> %s\n", m.Shard, verb, m.From, m.To)
				}
			})
			return errors.Join(failed, perr)
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only print the moves")
	return c
}

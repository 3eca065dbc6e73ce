package fsm

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
)

func fmtQueue(q *boxoffice.Queue) string {
	return fmt.Sprintf("queue %s opens=%d pass-ttl=%d admit-pct=%d opened=%v at=%d joined=%d early=%d admitted=%d outstanding=%d sold-out=%v",
		q.Event, q.Config.OpensAtMs, q.Config.PassTTLSeconds, q.Config.AdmitPercent, q.Opened, q.OpenedAtMs,
		q.Joined, q.Early, q.Admitted, q.Outstanding, q.SoldOut)
}

func fmtPlace(p *boxoffice.Place) string {
	out := fmt.Sprintf("place %s/%s seq=%d rank=%d early=%v %s ahead=%d", p.Event, p.Buyer, p.Seq, p.Rank, p.Early, p.State, p.Ahead)
	if p.AdmittedAtMs != 0 {
		out += fmt.Sprintf(" admitted=%d pass-until=%d", p.AdmittedAtMs, p.PassExpiresAtMs)
	}
	return out
}

// dumpQueueKV renders the waiting room's records; ok is false for a key of
// another table.
func dumpQueueKV(k, v []byte) (string, bool, error) {
	switch k[0] {
	case tagQueue:
		q, err := decodeQueue(v)
		if err != nil {
			return "", true, err
		}
		return fmtQueue(q.view(string(k[1:]))) + fmt.Sprintf(" seed=%d", q.seed), true, nil
	case tagQueueList:
		if len(v) != 0 {
			return "", true, fmt.Errorf("bad queue list record")
		}
		return fmt.Sprintf("queue-list %s", k[1:]), true, nil
	case tagPlace:
		p, err := decodePlace(v)
		if err != nil {
			return "", true, err
		}
		return fmt.Sprintf("place %s seq=%d admitted=%d pass-until=%d holding=%v", strings.ReplaceAll(string(k[1:]), "\x00", "/"), p.seq, p.admittedAtMs, p.passExpiresAtMs, p.holding), true, nil
	case tagPlaceSeq:
		ev, seq, ok := splitSeqKey(k)
		if !ok {
			return "", true, fmt.Errorf("bad place-by-seq key")
		}
		return fmt.Sprintf("place-seq %s/%d %s", ev, seq, v), true, nil
	case tagAdmit:
		ev, exp, seq, ok := splitAdmitKey(k)
		if !ok || len(v) != 0 {
			return "", true, fmt.Errorf("bad admission record")
		}
		return fmt.Sprintf("admitted-not-holding %s pass-until=%d seq=%d", ev, exp, seq), true, nil
	}
	return "", false, nil
}

func splitSeqKey(k []byte) (string, uint64, bool) {
	if len(k) < 11 || k[len(k)-9] != 0 {
		return "", 0, false
	}
	return string(k[1 : len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

func splitAdmitKey(k []byte) (string, int64, uint64, bool) {
	if len(k) < 19 || k[len(k)-17] != 0 {
		return "", 0, 0, false
	}
	return string(k[1 : len(k)-17]), int64(binary.BigEndian.Uint64(k[len(k)-16:])), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// checkQueueInvariants checks every queue against its places: one place
// per sequence and per buyer, both indexes agreeing; exactly the places of
// ranks below the cursor are admitted; the outstanding count is the number
// of admitted-not-holding records, each of an admitted place that holds
// nothing, and every such place whose pass is still valid has one.
func checkQueueInvariants(t testing.TB, s *Store) {
	t.Helper()
	qs, err := s.Queues()
	require.NoError(t, err)
	now := s.NowMs()
	for _, qv := range qs {
		q, err := s.queueRec(qv.Event)
		require.NoError(t, err)
		ev := qv.Event
		bySeq := map[uint64]string{}
		require.NoError(t, s.scan(prefix(tagPlaceSeq, ev), upperBound(prefix(tagPlaceSeq, ev)), func(k, v []byte) (bool, error) {
			_, seq, ok := splitSeqKey(k)
			require.True(t, ok)
			bySeq[seq] = string(v)
			return true, nil
		}))
		require.Len(t, bySeq, int(q.joined), "queue %s: places by seq", ev)
		places := map[string]placeRec{}
		admitted := map[uint64]bool{} // ranks
		require.NoError(t, s.scan(prefix(tagPlace, ev), upperBound(prefix(tagPlace, ev)), func(k, v []byte) (bool, error) {
			p, err := decodePlace(v)
			require.NoError(t, err)
			buyer := string(k[len(ev)+2:])
			places[buyer] = p
			require.Equal(t, buyer, bySeq[p.seq], "queue %s: seq %d", ev, p.seq)
			if p.admittedAtMs != 0 {
				require.True(t, q.opened, "queue %s: admission before the opening", ev)
				r := q.rankOf(p.seq)
				require.False(t, admitted[r], "queue %s: rank %d admitted twice", ev, r)
				admitted[r] = true
				require.Less(t, r, q.admitted, "queue %s: %s admitted past the cursor", ev, buyer)
			} else {
				require.False(t, p.holding, "queue %s: %s holds without admission", ev, buyer)
			}
			return true, nil
		}))
		require.Len(t, places, int(q.joined), "queue %s: places by buyer", ev)
		require.Len(t, admitted, int(q.admitted), "queue %s: admitted places", ev)
		if !q.opened {
			require.Zero(t, q.early, "queue %s", ev)
		}
		require.LessOrEqual(t, q.early, q.joined)
		outstanding := 0
		require.NoError(t, s.scan(prefix(tagAdmit, ev), upperBound(prefix(tagAdmit, ev)), func(k, v []byte) (bool, error) {
			_, exp, seq, ok := splitAdmitKey(k)
			require.True(t, ok)
			p := places[bySeq[seq]]
			require.NotZero(t, p.admittedAtMs, "queue %s: outstanding seq %d not admitted", ev, seq)
			require.False(t, p.holding, "queue %s: outstanding seq %d holds", ev, seq)
			require.Equal(t, p.passExpiresAtMs, exp)
			outstanding++
			return true, nil
		}))
		require.Equal(t, int(q.outstanding), outstanding, "queue %s: outstanding count", ev)
		for b, p := range places {
			if p.admittedAtMs != 0 && !p.holding && p.passExpiresAtMs > now {
				v, ok, err := s.get(admitKey(ev, p.passExpiresAtMs, p.seq))
				require.NoError(t, err)
				require.True(t, ok && len(v) == 0, "queue %s: %s admitted, not holding, pass valid, but not outstanding", ev, b)
			}
		}
	}
}

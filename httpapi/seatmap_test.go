package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/fsm"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// The seat map, written without encoding/json, is byte for byte what
// encoding/json writes for the store's seats, under every filter.
func TestSeatMapIsTheStoresSeats(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 1, Shards: 1})
	m := c.Members[0]
	ev := testcluster.Event("map-1", 3, 4, 5)
	ev["categories"] = []map[string]any{{"id": "std", "name": "Standard", "priceCents": 5000}, {"id": "vip", "name": "VIP", "priceCents": 9000}}
	ev["venue"].(map[string]any)["sections"].([]map[string]any)[1]["category"] = "vip"
	ev["venue"].(map[string]any)["sections"].([]map[string]any)[0]["flags"] = []map[string]any{
		{"flag": "accessible", "seats": []string{"1-1", "4-5"}}, {"flag": "aisle", "seats": []string{"1-1"}}}
	code, body := c.Do(m, "POST", "/v1/events", testcluster.Token("org", httpapi.RoleOrganiser), ev)
	require.Equal(t, 201, code, "%s", body)
	// Some seats held, some sold, in every section.
	for i, seats := range [][]string{{"A-1-1", "A-2-3"}, {"B-4-5", "C-1-1"}, {"C-4-5"}} {
		res, err := m.Node.Propose(t.Context(), 0, &fsm.Hold{Event: "map-1", Buyer: fmt.Sprintf("b%d", i), Seats: seats})
		require.NoError(t, err)
		require.NoError(t, res.Err)
		if i != 1 {
			continue
		}
		res, err = m.Node.Propose(t.Context(), 0, &fsm.Purchase{Hold: res.Hold.ID, Buyer: res.Hold.Buyer})
		require.NoError(t, err)
		require.NoError(t, res.Err)
	}
	type seatJSON struct {
		ID       string   `json:"id"`
		Category string   `json:"category"`
		State    string   `json:"state"`
		Flags    []string `json:"flags,omitempty"`
	}
	for _, section := range []string{"", "A", "B", "C"} {
		for _, category := range []string{"", "std", "vip", "none"} {
			for _, status := range []string{"", "free", "held", "sold"} {
				f := fsm.SeatFilter{Section: section, Category: category}
				if status != "" {
					st, ok := boxoffice.ParseSeatState(status)
					require.True(t, ok)
					f.State = &st
				}
				st := m.Node.Store(0)
				seats, err := st.Seats("map-1", f)
				require.NoError(t, err)
				out := []seatJSON{}
				for _, s := range seats {
					out = append(out, seatJSON{ID: s.ID, Category: s.Category, State: s.State.String(), Flags: s.Flags})
				}
				before := st.AppliedIndex()
				q := fmt.Sprintf("?section=%s&category=%s&status=%s", section, category, status)
				code, body, h := testcluster.DoHeader(m.HTTPAddr, "GET", "/v1/events/map-1/seats"+q, "", nil)
				require.Equal(t, 200, code, "%s: %s", q, body)
				// The leader's periodic sweeps move the index (and change
				// nothing here): the map carries the index it was read at.
				index, err := strconv.ParseUint(h.Get("X-Boxoffice-Index"), 10, 64)
				require.NoError(t, err)
				require.GreaterOrEqual(t, index, before)
				want, err := json.Marshal(map[string]any{"event": "map-1", "index": index, "seats": out})
				require.NoError(t, err)
				require.Equal(t, string(want), string(body), q)
			}
		}
	}
}

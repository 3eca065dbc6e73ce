package httpapi_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice/internal/testcluster"
	"boxoffice/raftnode"
)

// Two PATCHes of different fields of one event, both acknowledged 200,
// must both be visible afterwards. The handler reads the event, applies the
// patch and proposes the whole event on condition that it did not change
// since (fsm.UpdateEvent.Base): before that condition, two concurrent
// patches read the same old event and the later one reverted the earlier
// one's field.
func TestConcurrentPatchesKeepEachOthersFields(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: 2})
	org := organiser("org1")
	const events = 20
	for i := 0; i < events; i++ {
		createEvent(t, c, testcluster.Event(fmt.Sprintf("p-%d", i), 1, 1, 2))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < events; i++ {
		id := fmt.Sprintf("p-%d", i)
		leader := c.Leader(raftnode.ShardOf(id, 2))
		for _, patch := range []map[string]any{{"name": "New name"}, {"location": "New place"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				code, body := c.Do(leader, "PATCH", "/v1/events/"+id, org, patch)
				assert.Equal(t, 200, code, "%s", body)
			}()
		}
	}
	close(start)
	wg.Wait()
	lost := 0
	for i := 0; i < events; i++ {
		id := fmt.Sprintf("p-%d", i)
		code, body := c.Do(c.Leader(raftnode.ShardOf(id, 2)), "GET", "/v1/events/"+id+"?consistency=strong", "", nil)
		require.Equal(t, 200, code, "%s", body)
		ev := decode[struct {
			Name     string `json:"name"`
			Location string `json:"location"`
		}](t, body)
		if ev.Name != "New name" || ev.Location != "New place" {
			lost++
			t.Logf("%s: name=%q location=%q", id, ev.Name, ev.Location)
		}
	}
	require.Zero(t, lost, "acknowledged PATCHes were lost")
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// The profiles are served on their own address, and only there; stop
// closes it.
func TestPprofServesProfilesAndStops(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stop, err := startPprof(addr, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), "goroutine profile")
	stop()
	_, err = http.Get("http://" + addr + "/debug/pprof/")
	require.Error(t, err, "the listener is closed")
}

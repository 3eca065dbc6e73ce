package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

// appendJSONString writes what encoding/json writes, for ids and for
// anything else.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "A-1-1", "floor", "a.b_c-9", `q"uote`, `back\slash`, "<b>&", "tab\there", "nl\n", "ünï", "\u2028", "\x7f", "\xff"} {
		want, err := json.Marshal(s)
		assert.NoError(t, err)
		assert.Equal(t, string(want), string(appendJSONString([]byte("x"), s))[1:], "%q", s)
	}
}

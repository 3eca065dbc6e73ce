package httpapi

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"boxoffice"
)

// Every code has its own status; only internal is a 500.
func TestEveryCodeHasAStatus(t *testing.T) {
	for _, c := range boxoffice.Codes() {
		_, ok := statusOf[c]
		assert.True(t, ok, "code %s has no status", c)
		if c != boxoffice.CodeInternal {
			assert.NotEqual(t, http.StatusInternalServerError, StatusOf(c), "code %s", c)
		}
	}
	assert.Len(t, statusOf, len(boxoffice.Codes()), "statusOf names a code that Codes does not list")
}

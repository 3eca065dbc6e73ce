// Package api holds the OpenAPI 3 document of the HTTP API (v1), embedded so
// that every node can serve it at GET /v1/openapi.yaml and tests can check a
// running cluster against it.
//
// The document is the contract outside clients rely on. The tests of this
// package drive every operation it describes through an in-process 3-node
// cluster and validate each request and answer against it, so a route or a
// JSON shape that changes without the document fails them.
package api

import (
	_ "embed"
	"slices"
)

//go:embed openapi.yaml
var openAPI []byte

// ContentType is the media type of the document.
const ContentType = "application/yaml"

// OpenAPI returns the document, as YAML. The copy is the caller's: the
// package keeps no state a caller could change.
func OpenAPI() []byte { return slices.Clone(openAPI) }

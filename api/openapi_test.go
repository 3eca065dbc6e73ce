package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"boxoffice"
	"boxoffice/api"
	"boxoffice/httpapi"
	"boxoffice/internal/testcluster"
)

// loadDocument loads and validates the embedded document.
func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	require.NoError(t, err, "load openapi.yaml")
	require.NoError(t, doc.Validate(loader.Context), "validate openapi.yaml")
	return doc
}

// operation is one method of one path of the document.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

func (o operation) String() string { return o.method + " " + o.path }

func operations(doc *openapi3.T) []operation {
	var out []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			out = append(out, operation{method: method, path: path, op: op})
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == http.MethodDelete || method == http.MethodPut
}

// takesKey reports whether an operation accepts an Idempotency-Key: every
// POST, PATCH and DELETE, and a PUT that is not the same when repeated (a
// venue's PUT makes a new version each time); a PUT that is (an access
// grant) takes none.
func takesKey(o operation) bool {
	if o.method == http.MethodPut {
		return strings.HasPrefix(o.path, "/v1/venues/")
	}
	return isWrite(o.method)
}

// TestDocumentIsValid checks the document loads, is valid OpenAPI 3, and
// keeps the rules every operation shares: an operationId, X-Boxoffice-Index
// on every success of a /v1 route, Idempotency-Key on every write (recorded,
// with 422 and Idempotent-Replayed, on every write but the cluster's), 401
// where a token is required, 400 where a body can be malformed, and errors
// only as problem+json.
func TestDocumentIsValid(t *testing.T) {
	doc := loadDocument(t)
	for _, o := range operations(doc) {
		assert.NotEmpty(t, o.op.OperationID, "%s: operationId", o)
		v1 := strings.HasPrefix(o.path, "/v1/")
		recorded := takesKey(o) && !strings.HasPrefix(o.path, "/v1/cluster")
		assert.Equal(t, recorded, o.op.Responses.Status(422) != nil, "%s: 422 idempotency_key_reused is documented on recorded writes, only", o)
		hasIdem := false
		for _, p := range o.op.Parameters {
			if p.Value.In == openapi3.ParameterInHeader && p.Value.Name == "Idempotency-Key" {
				hasIdem = true
			}
		}
		assert.Equal(t, takesKey(o), hasIdem, "%s: Idempotency-Key is accepted by writes, only (but a PUT that is the same when repeated)", o)
		if o.op.Security != nil && len(*o.op.Security) > 0 {
			assert.NotNil(t, o.op.Responses.Status(401), "%s needs a token: document 401", o)
		}
		if o.op.RequestBody != nil {
			assert.NotNil(t, o.op.Responses.Status(400), "%s takes a body: document 400", o)
		}
		for code, ref := range o.op.Responses.Map() {
			status, err := strconv.Atoi(code)
			require.NoError(t, err, "%s: response %q: give statuses, not ranges or default", o, code)
			r := ref.Value
			if status < 400 {
				_, hasIndex := r.Headers["X-Boxoffice-Index"]
				assert.Equal(t, v1, hasIndex, "%s %d: X-Boxoffice-Index is on every success of a /v1 route, only", o, status)
				_, hasReplayed := r.Headers["Idempotent-Replayed"]
				assert.Equal(t, recorded, hasReplayed, "%s %d: Idempotent-Replayed is on every success of a recorded write, only", o, status)
				continue
			}
			assert.NotNil(t, r.Content.Get("application/problem+json"), "%s %d: errors are problem+json", o, status)
			assert.Len(t, r.Content, 1, "%s %d: errors are problem+json only", o, status)
		}
	}
}

// rootCodes lists the error codes the root package declares, read from its
// source: a code added there but not to boxoffice.Codes() would otherwise
// escape both this test and httpapi's.
func rootCodes(t *testing.T) []boxoffice.Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../errors.go", nil, 0)
	require.NoError(t, err)
	var out []boxoffice.Code
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok && lit.Kind == token.STRING, "code %v is not a string literal", v)
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out = append(out, boxoffice.Code(s))
			}
		}
	}
	require.NotEmpty(t, out, "no codes found in ../errors.go")
	return out
}

// problemCodes reads the status and codes a problem response component
// allows: allOf [Problem, {status: enum [s], code: enum [...]}].
func problemCodes(t *testing.T, name string, r *openapi3.Response) (int, []string) {
	t.Helper()
	mt := r.Content.Get("application/problem+json")
	require.NotNil(t, mt, "response %s: problem+json", name)
	s := mt.Schema.Value
	require.Len(t, s.AllOf, 2, "response %s: allOf [Problem, {status, code}]", name)
	require.Equal(t, "#/components/schemas/Problem", s.AllOf[0].Ref, "response %s", name)
	props := s.AllOf[1].Value.Properties
	require.Len(t, props["status"].Value.Enum, 1, "response %s: one status", name)
	status, ok := props["status"].Value.Enum[0].(float64)
	require.True(t, ok, "response %s: status enum", name)
	var codes []string
	for _, c := range props["code"].Value.Enum {
		codes = append(codes, c.(string))
	}
	return int(status), codes
}

// TestDocumentedCodesMatchServer checks that every code of the root package
// is documented, with the HTTP status httpapi sends it with, and nothing else.
func TestDocumentedCodesMatchServer(t *testing.T) {
	doc := loadDocument(t)
	var all []string
	for _, c := range doc.Components.Schemas["Problem"].Value.Properties["code"].Value.Enum {
		all = append(all, c.(string))
	}
	byStatus := map[int][]string{}
	for name, ref := range doc.Components.Responses {
		status, codes := problemCodes(t, name, ref.Value)
		byStatus[status] = append(byStatus[status], codes...)
		for _, c := range codes {
			assert.Equal(t, httpapi.StatusOf(boxoffice.Code(c)), status, "response %s documents %s, which the server sends with another status", name, c)
		}
	}
	root := boxoffice.Codes()
	assert.ElementsMatch(t, rootCodes(t), root, "boxoffice.Codes() lists every code of errors.go")
	for _, c := range root {
		assert.Contains(t, all, string(c), "Problem.code lacks %s", c)
		assert.Contains(t, byStatus[httpapi.StatusOf(c)], string(c), "no %d response documents %s", httpapi.StatusOf(c), c)
	}
	for _, c := range all {
		assert.Contains(t, root, boxoffice.Code(c), "Problem.code has %s, which the root package does not declare", c)
	}
}

// shards is the shard count of the test cluster.
const shards = 2

// conformance drives requests through a running cluster and validates each
// one, and its answer, against the document.
type conformance struct {
	c      *testcluster.Cluster
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	http   *http.Client
	next   int

	// covered holds the operations with at least one validated answer of
	// the status the step expected, a 2xx one; seen every status answered.
	covered map[string]bool
	seen    map[string]map[int]bool
}

// bearerJWT is the document's view of authentication: a bearer token shaped
// like a JWT. Whether it is valid is for the server to say (401).
func bearerJWT(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	tok, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.Count(tok, ".") != 2 {
		return errors.New("no bearer JWT")
	}
	return nil
}

func newConformance(t *testing.T) *conformance {
	doc := loadDocument(t)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	k := &conformance{
		doc:    doc,
		router: router,
		opts: &openapi3filter.Options{
			AuthenticationFunc:    bearerJWT,
			IncludeResponseStatus: true, // an undocumented status fails
			MultiError:            true,
			SkipSettingDefaults:   true,
		},
		http:    &http.Client{Timeout: 30 * time.Second},
		covered: map[string]bool{},
		seen:    map[string]map[int]bool{},
	}
	// The change stream's body is text (Server-Sent Events).
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	// Say where and why, without kin-openapi's dump of the whole schema.
	k.opts.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return fmt.Sprintf("at /%s: %s (value %v)", strings.Join(err.JSONPointer(), "/"), err.Reason, err.Value)
	})
	t.Cleanup(k.http.CloseIdleConnections)
	k.c = testcluster.Start(t, testcluster.Options{Nodes: 3, Shards: shards})
	return k
}

// step is one request and what the test expects of its answer.
type step struct {
	method, path string
	token        string
	// body is nil, a string or []byte sent as is, or a value sent as JSON.
	body    any
	idemKey string
	// want is the expected status; code the expected problem code.
	want int
	code string
	// invalid marks a request the document itself rejects: input the
	// server must refuse too. Anything else must pass request validation.
	invalid bool
	// on is the member to ask; nil: each member in turn.
	on *testcluster.Member
	// header holds further request headers.
	header map[string]string
}

func (s step) String() string { return s.method + " " + s.path }

type answer struct {
	status int
	body   []byte
	header http.Header
}

func encodeBody(body any) []byte {
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return []byte(b)
	case []byte:
		return b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			panic(err)
		}
		return enc
	}
}

func (k *conformance) member(s step) *testcluster.Member {
	if s.on != nil {
		return s.on
	}
	m := k.c.Members[k.next%len(k.c.Members)]
	k.next++
	return m
}

func newRequest(t *testing.T, s step, addr string, body []byte) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), s.method, "http://"+addr+s.path, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if s.idemKey != "" {
		req.Header.Set("Idempotency-Key", s.idemKey)
	}
	for k, v := range s.header {
		req.Header.Set(k, v)
	}
	return req
}

// do sends s to a member, validates the request and the answer against the
// document, and checks the status and problem code s expects. Mismatches are
// reported with t.Errorf; do returns the answer either way.
func (k *conformance) do(t *testing.T, s step) answer {
	t.Helper()
	m := k.member(s)
	body := encodeBody(s.body)

	// The document's view of the request, on a copy: validation reads the body.
	in := &openapi3filter.RequestValidationInput{Request: newRequest(t, s, m.HTTPAddr, body), Options: k.opts}
	route, params, err := k.router.FindRoute(in.Request)
	if err != nil {
		t.Errorf("%s: not in the document: %v", s, err)
	} else {
		in.Route, in.PathParams = route, params
		err := openapi3filter.ValidateRequest(t.Context(), in)
		switch {
		case s.invalid && err == nil:
			t.Errorf("%s: the document accepts a request the server must refuse (body %s)", s, body)
		case !s.invalid && err != nil:
			t.Errorf("%s: the request breaks the document: %v", s, err)
		}
	}

	// A 503 (a leader lost its lead on a loaded machine: the outcome is
	// unknown) is tried again where that is safe, as a client would: a
	// read, a write with an idempotency key, or one that must be refused.
	retryable := s.method == "GET" || s.idemKey != "" || s.want >= 400
	var resp *http.Response
	var got []byte
	for attempt := 1; ; attempt++ {
		resp, err = k.http.Do(newRequest(t, s, m.HTTPAddr, body))
		require.NoError(t, err, "%s via %s", s, m.ID)
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		if resp.StatusCode != http.StatusServiceUnavailable || s.want == http.StatusServiceUnavailable || !retryable || attempt == 10 {
			break
		}
	}
	a := answer{status: resp.StatusCode, body: got, header: resp.Header}

	ok := assert.Equal(t, s.want, a.status, "%s via %s: status; body %s", s, m.ID, got)
	if s.code != "" && a.status >= 400 {
		var p struct{ Code string }
		_ = json.Unmarshal(got, &p)
		ok = assert.Equal(t, s.code, p.Code, "%s via %s: problem code; body %s", s, m.ID, got) && ok
	}
	if route == nil {
		return a
	}
	op := route.Method + " " + route.Path
	if k.seen[op] == nil {
		k.seen[op] = map[int]bool{}
	}
	k.seen[op][a.status] = true
	err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 a.status,
		Header:                 a.header,
		Body:                   io.NopCloser(bytes.NewReader(got)),
		Options:                k.opts,
	})
	if !assert.NoError(t, err, "%s via %s: the answer breaks the document", s, m.ID) {
		ok = false
	}
	if ok && a.status < 300 {
		k.covered[op] = true
	}
	if a.status < 300 && isWrite(s.method) {
		k.settle(t)
	}
	return a
}

// must is do for a step the rest of a scenario depends on: it stops the
// test unless the answer had the expected status.
func (k *conformance) must(t *testing.T, s step) answer {
	t.Helper()
	a := k.do(t, s)
	if a.status != s.want {
		t.FailNow()
	}
	return a
}

// settle waits until every member has applied what every shard's leader
// has, so that a local read on any member sees the writes before it.
func (k *conformance) settle(t *testing.T) {
	t.Helper()
	for s := 0; s < shards; s++ {
		want := k.c.Leader(s).Node.Store(s).AppliedIndex()
		require.Eventually(t, func() bool {
			for _, m := range k.c.Running() {
				if m.Node.Store(s).AppliedIndex() < want {
					return false
				}
			}
			return true
		}, 10*time.Second, 5*time.Millisecond, "members did not catch up with shard %d", s)
	}
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(a.body, &v), "body: %s", a.body)
	return v
}

func buyer(name string) string     { return testcluster.Token(name, httpapi.RoleBuyer) }
func organiser(name string) string { return testcluster.Token(name, httpapi.RoleOrganiser) }
func admin() string                { return testcluster.AdminToken() }

type eventOut struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Type         string `json:"type"`
	StartsAt     string `json:"startsAt"`
	Location     string `json:"location"`
	Organiser    string `json:"organiser"`
	Capacity     int    `json:"capacity"`
	Categories   []map[string]any
	Venue        map[string]any
	Limits       map[string]any
	Availability []struct {
		ID   string `json:"id"`
		Free int    `json:"free"`
		Held int    `json:"held"`
		Sold int    `json:"sold"`
	} `json:"availability"`
}

type eventList struct {
	Events     []eventOut `json:"events"`
	NextCursor string     `json:"nextCursor"`
}

type seatMap struct {
	Event string `json:"event"`
	Index uint64 `json:"index"`
	Seats []struct {
		ID       string `json:"id"`
		Category string `json:"category"`
		State    string `json:"state"`
	} `json:"seats"`
}

type holdOut struct {
	ID        string   `json:"id"`
	Event     string   `json:"event"`
	Buyer     string   `json:"buyer"`
	Seats     []string `json:"seats"`
	ExpiresAt string   `json:"expiresAt"`
	State     string   `json:"state"`
	Order     string   `json:"order"`
}

type orderOut struct {
	ID          string   `json:"id"`
	Event       string   `json:"event"`
	Hold        string   `json:"hold"`
	Buyer       string   `json:"buyer"`
	Seats       []string `json:"seats"`
	AmountCents int64    `json:"amountCents"`
	State       string   `json:"state"`
}

func eventIDs(l eventList) []string {
	var ids []string
	for _, e := range l.Events {
		ids = append(ids, e.ID)
	}
	return ids
}

// createEvent creates a test event (sections A.. of rows×perRow seats of
// category std at 5000) with the given hold TTL and seats-per-buyer limit.
func (k *conformance) createEvent(t *testing.T, id string, sections, rows, perRow, ttl, perBuyer int) {
	t.Helper()
	ev := testcluster.Event(id, sections, rows, perRow)
	ev["limits"] = map[string]any{"maxSeatsPerBuyer": perBuyer, "holdTTLSeconds": ttl}
	k.must(t, step{method: "POST", path: "/v1/events", token: organiser("org1"), body: ev, want: 201})
}

func (k *conformance) hold(t *testing.T, event, who string, seats ...string) holdOut {
	t.Helper()
	a := k.must(t, step{method: "POST", path: "/v1/events/" + event + "/holds", token: buyer(who),
		body: map[string]any{"seats": seats}, want: 201})
	return decode[holdOut](t, a)
}

func (k *conformance) buy(t *testing.T, event, who string, seats ...string) orderOut {
	t.Helper()
	h := k.hold(t, event, who, seats...)
	a := k.must(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer(who),
		body: map[string]any{"paymentMethod": "pm_card_visa"}, want: 201})
	return decode[orderOut](t, a)
}

func (k *conformance) seatStates(t *testing.T, event, query string) map[string]string {
	t.Helper()
	a := k.must(t, step{method: "GET", path: "/v1/events/" + event + "/seats?" + query, want: 200})
	out := map[string]string{}
	for _, s := range decode[seatMap](t, a).Seats {
		out[s.ID] = s.State
	}
	return out
}

// TestServerConformsToDocument drives every operation of the document
// through a 3-node cluster (members in turn, so that writes are forwarded
// and reads served by followers): happy paths and the main errors, each
// request and answer validated against the document.
func TestServerConformsToDocument(t *testing.T) {
	k := newConformance(t)
	t.Run("operations", k.testOperations)
	t.Run("events", k.testEvents)
	t.Run("event update", k.testEventUpdate)
	t.Run("venues and general admission", k.testVenues)
	t.Run("event filters and pages", k.testEventPages)
	t.Run("seats", k.testSeats)
	t.Run("holds", k.testHolds)
	t.Run("best available hold", k.testBestAvailable)
	t.Run("expiry", k.testExpiry)
	t.Run("hold extend", k.testExtend)
	t.Run("purchase and orders", k.testPurchase)
	t.Run("my holds and orders", k.testMine)
	t.Run("order cancel", k.testCancel)
	t.Run("order exchange", k.testExchange)
	t.Run("event ledger", k.testLedger)
	t.Run("event access", k.testAccess)
	t.Run("idempotency", k.testIdempotency)
	t.Run("queue", k.testQueue)
	t.Run("cluster", k.testCluster)
	t.Run("every operation exercised", k.testCoverage)
}

func (k *conformance) testVenues(t *testing.T) {
	venue := map[string]any{
		"id": "conf-arena", "name": "Arena", "location": "Berlin",
		"categories": []map[string]any{{"id": "floor", "name": "Floor"}, {"id": "ga", "name": "Standing"}},
		"sections":   []map[string]any{{"id": "A", "category": "floor", "rows": 2, "seatsPerRow": 3, "position": map[string]int{"x": 1, "y": 2}}},
		"areas":      []map[string]any{{"id": "PIT", "category": "ga", "capacity": 3}},
	}
	v := decode[map[string]any](t, k.must(t, step{method: "POST", path: "/v1/venues", token: organiser("vorg"), body: venue, idemKey: "v-1", want: 201}))
	assert.EqualValues(t, 1, v["version"])
	assert.EqualValues(t, 9, v["capacity"])
	dup := map[string]any{"id": "conf-bad", "name": "Bad", "categories": []map[string]any{{"id": "c"}},
		"sections": []map[string]any{{"id": "A", "category": "c", "rows": 1, "seatsPerRow": 1}, {"id": "A", "category": "c", "rows": 1, "seatsPerRow": 2}}}
	empty := map[string]any{"id": "conf-bad", "name": "Bad", "categories": []map[string]any{{"id": "c"}}}
	for _, s := range []step{
		{method: "POST", path: "/v1/venues", token: organiser("vorg"), body: venue, want: 409, code: "venue_exists"},
		{method: "POST", path: "/v1/venues", token: organiser("vorg"), body: dup, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/venues", token: organiser("vorg"), body: empty, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/venues", token: buyer("b1"), body: venue, want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/venues", body: venue, want: 401, code: "unauthorized", invalid: true},
		{method: "GET", path: "/v1/venues/conf-bad", want: 404, code: "venue_not_found"},
		{method: "GET", path: "/v1/venues/conf-arena?version=2", want: 404, code: "venue_not_found"},
		{method: "PUT", path: "/v1/venues/conf-arena", token: organiser("other"), body: venue, want: 403, code: "forbidden"},
		{method: "PUT", path: "/v1/venues/conf-nope", token: organiser("vorg"), body: empty, want: 400, code: "invalid_argument"},
	} {
		k.do(t, s)
	}
	// A new version: an event made from version 1 keeps version 1.
	venue["areas"] = []map[string]any{{"id": "PIT", "category": "ga", "capacity": 30}}
	v = decode[map[string]any](t, k.must(t, step{method: "PUT", path: "/v1/venues/conf-arena", token: organiser("vorg"), body: venue, idemKey: "v-put", want: 200}))
	assert.EqualValues(t, 2, v["version"])
	// A retry with its key is answered from the record: no version 3.
	a := k.must(t, step{method: "PUT", path: "/v1/venues/conf-arena", token: organiser("vorg"), body: venue, idemKey: "v-put", want: 200})
	assert.EqualValues(t, 2, decode[map[string]any](t, a)["version"])
	assert.Equal(t, "true", a.header.Get("Idempotent-Replayed"))
	delete(venue, "id")
	k.do(t, step{method: "PUT", path: "/v1/venues/conf-nope", token: organiser("vorg"), body: venue, want: 404, code: "venue_not_found"})
	k.settle(t)
	l := decode[struct {
		Venues []map[string]any `json:"venues"`
	}](t, k.must(t, step{method: "GET", path: "/v1/venues?limit=500", want: 200}))
	assert.Len(t, l.Venues, 1)
	v = decode[map[string]any](t, k.must(t, step{method: "GET", path: "/v1/venues/conf-arena?version=1&consistency=strong", want: 200}))
	assert.EqualValues(t, 9, v["capacity"])

	ev := map[string]any{"id": "conf-ga", "name": "GA night", "venueId": "conf-arena", "venueVersion": 1,
		"categories": []map[string]any{{"id": "floor", "priceCents": 5000}, {"id": "ga", "priceCents": 2000}},
		"limits":     map[string]any{"maxSeatsPerBuyer": 4}}
	e := decode[map[string]any](t, k.must(t, step{method: "POST", path: "/v1/events", token: organiser("org1"), body: ev, want: 201}))
	assert.EqualValues(t, 1, e["venueVersion"])
	assert.EqualValues(t, 9, e["capacity"])
	h := decode[holdOut](t, k.must(t, step{method: "POST", path: "/v1/events/conf-ga/holds", token: buyer("g1"), body: `{"area":"PIT","quantity":2}`, want: 201}))
	assert.Equal(t, []string{"GA-PIT-1", "GA-PIT-2"}, h.Seats)
	for _, s := range []step{
		{method: "POST", path: "/v1/events/conf-ga/holds", token: buyer("g2"), body: `{"area":"PIT","quantity":2}`, want: 409, code: "seat_unavailable"},
		{method: "POST", path: "/v1/events/conf-ga/holds", token: buyer("g2"), body: `{"seats":["GA-PIT-3"]}`, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/events/conf-ga/holds", token: buyer("g2"), body: `{"area":"PIT","quantity":1,"seats":["GA-PIT-3"]}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-ga/holds", token: buyer("g2"), body: `{"area":"NOPE","quantity":1}`, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: map[string]any{"id": "conf-ga2", "name": "X", "venueId": "conf-nope",
			"categories": []map[string]any{{"id": "ga", "priceCents": 1}}}, want: 404, code: "venue_not_found"},
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: map[string]any{"id": "conf-ga2", "name": "X", "venueId": "conf-arena",
			"categories": []map[string]any{{"id": "ga", "priceCents": 1}}}, want: 400, code: "invalid_argument"},
	} {
		k.do(t, s)
	}
	m := k.seatStates(t, "conf-ga", "section=PIT")
	assert.Equal(t, map[string]string{"GA-PIT-1": "held", "GA-PIT-2": "held", "GA-PIT-3": "free"}, m)

	// Rows of their own lengths, an aisle, accessible seats: the holes are
	// no seats of an event made from the venue.
	rowsVenue := map[string]any{"id": "conf-rows", "name": "Rows", "categories": []map[string]any{{"id": "floor"}},
		"sections": []map[string]any{{"id": "R", "category": "floor", "rows": 2, "seatsPerRow": 4, "rowSeats": []int{3, 4}, "gaps": []string{"2-2"},
			"flags": []map[string]any{{"flag": "accessible", "seats": []string{"1-1"}}}}}}
	v = decode[map[string]any](t, k.must(t, step{method: "POST", path: "/v1/venues", token: organiser("vorg"), body: rowsVenue, want: 201}))
	assert.EqualValues(t, 6, v["capacity"])
	k.must(t, step{method: "POST", path: "/v1/events", token: organiser("org1"), want: 201, body: map[string]any{"id": "conf-rows-ev", "name": "Rows",
		"venueId": "conf-rows", "categories": []map[string]any{{"id": "floor", "priceCents": 100}}}})
	m = k.seatStates(t, "conf-rows-ev", "consistency=strong")
	assert.Equal(t, map[string]string{"R-1-1": "free", "R-1-2": "free", "R-1-3": "free", "R-2-1": "free", "R-2-3": "free", "R-2-4": "free"}, m)
	k.do(t, step{method: "POST", path: "/v1/events/conf-rows-ev/holds", token: buyer("g3"), body: `{"seats":["R-2-2"]}`, want: 400, code: "seat_not_found"})
}

func (k *conformance) testOperations(t *testing.T) {
	for _, m := range k.c.Members {
		h := decode[map[string]string](t, k.do(t, step{method: "GET", path: "/healthz", want: 200, on: m}))
		assert.Equal(t, m.ID, h["node"])
		h = decode[map[string]string](t, k.do(t, step{method: "GET", path: "/readyz", want: 200, on: m}))
		assert.Equal(t, m.ID, h["node"])
	}
	a := k.do(t, step{method: "GET", path: "/v1/openapi.yaml", want: 200})
	if a.status == 200 {
		assert.Equal(t, api.OpenAPI(), a.body, "the served document is the embedded one")
		assert.Equal(t, api.ContentType, strings.Split(a.header.Get("Content-Type"), ";")[0])
	}
}

func (k *conformance) testEvents(t *testing.T) {
	// Before any event: an empty list is a list.
	l := decode[eventList](t, k.do(t, step{method: "GET", path: "/v1/events", want: 200}))
	assert.Empty(t, l.Events)

	ev := map[string]any{
		"id": "conf-ev", "name": "Conformance night", "type": "concert",
		"startsAt": "2026-12-01T20:00:00Z", "location": "Berlin",
		"categories": []map[string]any{{"id": "floor", "name": "Floor", "priceCents": 9900}, {"id": "tier", "name": "Tier", "priceCents": 4900}},
		"venue": map[string]any{"sections": []map[string]any{
			{"id": "A", "category": "floor", "rows": 4, "seatsPerRow": 5},
			{"id": "B", "category": "tier", "rows": 2, "seatsPerRow": 10},
		}},
		"limits": map[string]any{"maxSeatsPerBuyer": 6, "holdTTLSeconds": 300},
	}
	e := decode[eventOut](t, k.must(t, step{method: "POST", path: "/v1/events", token: organiser("org1"), body: ev, want: 201}))
	assert.Equal(t, "org1", e.Organiser)
	assert.Equal(t, 40, e.Capacity)
	assert.Equal(t, "2026-12-01T20:00:00Z", e.StartsAt)

	expired, err := httpapi.MintToken(testcluster.Secret, "org1", httpapi.RoleOrganiser, -time.Minute)
	require.NoError(t, err)
	otherSecret, err := httpapi.MintToken([]byte("another-secret-0123456789"), "org1", httpapi.RoleOrganiser, time.Hour)
	require.NoError(t, err)
	small := testcluster.Event("conf-small", 1, 1, 1)
	noSections := testcluster.Event("conf-bad", 1, 1, 1)
	noSections["venue"] = map[string]any{"sections": []any{}}
	unknownCategory := testcluster.Event("conf-bad", 1, 1, 1)
	unknownCategory["venue"] = map[string]any{"sections": []map[string]any{{"id": "A", "category": "nope", "rows": 1, "seatsPerRow": 1}}}
	for _, s := range []step{
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: ev, want: 409, code: "event_exists"},
		{method: "POST", path: "/v1/events", token: buyer("b1"), body: small, want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/events", body: small, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/events", token: expired, body: small, want: 401, code: "unauthorized"},
		{method: "POST", path: "/v1/events", token: otherSecret, body: small, want: 401, code: "unauthorized"},
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: noSections, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: unknownCategory, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: `{"id":"conf-bad",`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events", token: organiser("org1"), body: `{"id":"conf-bad","nme":"x"}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "GET", path: "/v1/events/nope", want: 404, code: "event_not_found"},
		{method: "GET", path: "/v1/events/bad%20id", want: 400, code: "invalid_argument", invalid: true},
		{method: "GET", path: "/v1/events/conf-ev?consistency=eventual", want: 400, code: "invalid_argument", invalid: true},
		{method: "GET", path: "/v1/events?limit=0", want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}

	for _, q := range []string{"", "?consistency=local", "?consistency=strong"} {
		got := decode[eventOut](t, k.must(t, step{method: "GET", path: "/v1/events/conf-ev" + q, want: 200}))
		assert.Equal(t, "Conformance night", got.Name)
		require.Len(t, got.Availability, 2)
		assert.Equal(t, 20, got.Availability[0].Free)
	}
	l = decode[eventList](t, k.must(t, step{method: "GET", path: "/v1/events", want: 200}))
	assert.Contains(t, eventIDs(l), "conf-ev")
}

func (k *conformance) testEventUpdate(t *testing.T) {
	k.createEvent(t, "conf-upd", 2, 2, 2, 300, 8)
	// A partial update changes only what it names.
	e := decode[eventOut](t, k.must(t, step{method: "PATCH", path: "/v1/events/conf-upd", token: organiser("org1"),
		body: map[string]any{"name": "Renamed", "location": "Hamburg"}, want: 200}))
	assert.Equal(t, "Renamed", e.Name)
	assert.Equal(t, "Hamburg", e.Location)
	assert.Equal(t, 8, e.Capacity, "sections kept")
	assert.Len(t, e.Categories, 1, "categories kept")
	e = decode[eventOut](t, k.must(t, step{method: "PATCH", path: "/v1/events/conf-upd", token: admin(),
		body: `{"limits":{"holdTTLSeconds":120},"startsAt":"2027-03-01T18:30:00Z"}`, want: 200}))
	assert.Equal(t, map[string]any{"maxSeatsPerBuyer": 8.0, "holdTTLSeconds": 120.0}, e.Limits, "the limit not named is kept")
	assert.Equal(t, "2027-03-01T18:30:00Z", e.StartsAt)
	e = decode[eventOut](t, k.must(t, step{method: "PATCH", path: "/v1/events/conf-upd", token: admin(), body: `{"startsAt":""}`, want: 200}))
	assert.Empty(t, e.StartsAt, "an empty startsAt clears it")
	got := decode[eventOut](t, k.must(t, step{method: "GET", path: "/v1/events/conf-upd", want: 200}))
	assert.Equal(t, "Renamed", got.Name)

	// Sections may only be appended once seats are taken.
	k.hold(t, "conf-upd", "b1", "B-1-1")
	oneSection := map[string]any{"sections": []map[string]any{{"id": "A", "category": "std", "rows": 2, "seatsPerRow": 2}}}
	for _, s := range []step{
		{method: "PATCH", path: "/v1/events/conf-upd", token: admin(), body: map[string]any{"venue": oneSection}, want: 409, code: "layout_in_use"},
		{method: "PATCH", path: "/v1/events/conf-upd", token: organiser("org2"), body: map[string]any{"name": "Mine"}, want: 403, code: "forbidden"},
		{method: "PATCH", path: "/v1/events/conf-upd", token: buyer("b1"), body: map[string]any{"name": "Mine"}, want: 403, code: "forbidden"},
		{method: "PATCH", path: "/v1/events/conf-upd", body: map[string]any{"name": "Mine"}, want: 401, code: "unauthorized", invalid: true},
		{method: "PATCH", path: "/v1/events/nope", token: admin(), body: map[string]any{"name": "Mine"}, want: 404, code: "event_not_found"},
		{method: "PATCH", path: "/v1/events/conf-upd", token: admin(), body: map[string]any{"id": "other"}, want: 400, code: "invalid_argument"},
		{method: "PATCH", path: "/v1/events/conf-upd", token: admin(), body: map[string]any{"nme": "x"}, want: 400, code: "invalid_argument", invalid: true},
		{method: "PATCH", path: "/v1/events/conf-upd", token: admin(), body: map[string]any{"name": ""}, want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}
}

func (k *conformance) testEventPages(t *testing.T) {
	for i, typ := range []string{"opera", "sport"} {
		ev := testcluster.Event("conf-page-"+typ, 1, 1, 2)
		ev["type"] = typ
		ev["location"] = []string{"Vienna", "Leeds"}[i]
		ev["startsAt"] = fmt.Sprintf("2027-0%d-01T19:00:00Z", i+1)
		k.must(t, step{method: "POST", path: "/v1/events", token: organiser("org1"), body: ev, want: 201})
	}
	l := decode[eventList](t, k.must(t, step{method: "GET", path: "/v1/events?type=opera", want: 200}))
	assert.Equal(t, []string{"conf-page-opera"}, eventIDs(l), "type filter")
	l = decode[eventList](t, k.must(t, step{method: "GET", path: "/v1/events?location=Leeds&q=page", want: 200}))
	assert.Equal(t, []string{"conf-page-sport"}, eventIDs(l), "location and q filters")
	l = decode[eventList](t, k.must(t, step{method: "GET", path: "/v1/events?from=2027-01-15T00:00:00Z&to=2027-12-31T00:00:00Z", want: 200}))
	assert.Equal(t, []string{"conf-page-sport"}, eventIDs(l), "from and to filters")

	// Every event, one page at a time.
	var ids []string
	path := "/v1/events?limit=1"
	for page := 0; page < 20; page++ {
		l := decode[eventList](t, k.must(t, step{method: "GET", path: path, want: 200}))
		assert.LessOrEqual(t, len(l.Events), 1)
		ids = append(ids, eventIDs(l)...)
		if l.NextCursor == "" {
			break
		}
		path = "/v1/events?limit=1&cursor=" + l.NextCursor
	}
	all := decode[eventList](t, k.must(t, step{method: "GET", path: "/v1/events?limit=500", want: 200}))
	assert.ElementsMatch(t, eventIDs(all), ids, "pages with limit=1 and nextCursor list every event once")
	k.do(t, step{method: "GET", path: "/v1/events?from=yesterday", want: 400, code: "invalid_argument", invalid: true})
}

func (k *conformance) testSeats(t *testing.T) {
	k.createEvent(t, "conf-seats", 2, 2, 3, 300, 8)
	k.hold(t, "conf-seats", "b1", "A-1-2")
	a := k.must(t, step{method: "GET", path: "/v1/events/conf-seats/seats", want: 200})
	m := decode[seatMap](t, a)
	assert.Equal(t, "conf-seats", m.Event)
	assert.Len(t, m.Seats, 12)
	assert.Equal(t, strconv.FormatUint(m.Index, 10), a.header.Get("X-Boxoffice-Index"))
	assert.Equal(t, map[string]string{"A-1-2": "held"}, k.seatStates(t, "conf-seats", "status=held&consistency=strong"))
	assert.Len(t, k.seatStates(t, "conf-seats", "section=B&status=free&category=std&consistency=local"), 6)
	for _, s := range []step{
		{method: "GET", path: "/v1/events/nope/seats", want: 404, code: "event_not_found"},
		{method: "GET", path: "/v1/events/conf-seats/seats?status=gone", want: 400, code: "invalid_argument", invalid: true},
		{method: "GET", path: "/v1/events/conf-seats/seats?consistency=eventual", want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}

	// The change stream: a reader from an index this node has not reached
	// is told to reset, and the stream ends (a live one would not end
	// within the client's timeout).
	c := k.must(t, step{method: "GET", path: "/v1/events/conf-seats/changes?from=99999999999", want: 200})
	assert.Equal(t, "text/event-stream", strings.Split(c.header.Get("Content-Type"), ";")[0])
	assert.Contains(t, string(c.body), "event: reset\n")
	for _, s := range []step{
		{method: "GET", path: "/v1/events/nope/changes", want: 404, code: "event_not_found"},
		{method: "GET", path: "/v1/events/conf-seats/changes?from=-1", want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}
}

// testLedger reads an event's orders, holds and seat owners as its
// organiser (and the audit) does: page by page, and refused to others.
func (k *conformance) testLedger(t *testing.T) {
	k.createEvent(t, "conf-ledger", 1, 2, 4, 300, 8)
	o1 := k.buy(t, "conf-ledger", "b1", "A-1-1", "A-1-2")
	o2 := k.buy(t, "conf-ledger", "b2", "A-2-1")
	h := k.hold(t, "conf-ledger", "b3", "A-2-4")

	type ordersPage struct {
		Orders []struct {
			ID         string `json:"id"`
			State      string `json:"state"`
			PaymentRef string `json:"paymentRef"`
		} `json:"orders"`
		NextCursor string `json:"nextCursor"`
	}
	var ids []string
	path := "/v1/events/conf-ledger/orders?limit=1&consistency=strong"
	for page := 0; page < 10; page++ {
		p := decode[ordersPage](t, k.must(t, step{method: "GET", path: path, token: organiser("org1"), want: 200}))
		assert.LessOrEqual(t, len(p.Orders), 1)
		for _, o := range p.Orders {
			ids = append(ids, o.ID)
			assert.Equal(t, "paid", o.State)
			assert.NotEmpty(t, o.PaymentRef, "a paid order has its charge")
		}
		if p.NextCursor == "" {
			break
		}
		path = "/v1/events/conf-ledger/orders?limit=1&consistency=strong&cursor=" + p.NextCursor
	}
	assert.ElementsMatch(t, []string{o1.ID, o2.ID}, ids)

	holds := decode[struct {
		Holds []holdOut `json:"holds"`
	}](t, k.must(t, step{method: "GET", path: "/v1/events/conf-ledger/holds", token: admin(), want: 200}))
	states := map[string]string{}
	for _, x := range holds.Holds {
		states[x.ID] = x.State
	}
	assert.Equal(t, "active", states[h.ID])
	assert.Len(t, states, 3, "the two purchased holds and the active one")

	m := decode[struct {
		Seats []struct {
			ID, State, Hold, Order string
		} `json:"seats"`
	}](t, k.must(t, step{method: "GET", path: "/v1/events/conf-ledger/seats?owners=true&status=sold", token: organiser("org1"), want: 200}))
	owners := map[string]string{}
	for _, s := range m.Seats {
		owners[s.ID] = s.Order
	}
	assert.Equal(t, map[string]string{"A-1-1": o1.ID, "A-1-2": o1.ID, "A-2-1": o2.ID}, owners)
	m = decode[struct {
		Seats []struct {
			ID, State, Hold, Order string
		} `json:"seats"`
	}](t, k.must(t, step{method: "GET", path: "/v1/events/conf-ledger/seats?owners=true&status=held", token: admin(), want: 200}))
	require.Len(t, m.Seats, 1)
	assert.Equal(t, h.ID, m.Seats[0].Hold)

	for _, s := range []step{
		{method: "GET", path: "/v1/events/conf-ledger/orders", token: organiser("org2"), want: 403, code: "forbidden"},
		{method: "GET", path: "/v1/events/conf-ledger/orders", token: buyer("b1"), want: 403, code: "forbidden"},
		{method: "GET", path: "/v1/events/conf-ledger/orders", want: 401, code: "unauthorized", invalid: true},
		{method: "GET", path: "/v1/events/conf-ledger/orders?limit=1001", token: admin(), want: 400, code: "invalid_argument", invalid: true},
		{method: "GET", path: "/v1/events/nope/orders", token: admin(), want: 404, code: "event_not_found"},
		{method: "GET", path: "/v1/events/conf-ledger/holds", token: organiser("org2"), want: 403, code: "forbidden"},
		{method: "GET", path: "/v1/events/conf-ledger/holds?cursor=bad%20cursor", token: admin(), want: 400, code: "invalid_argument"},
		{method: "GET", path: "/v1/events/conf-ledger/seats?owners=true", want: 401, code: "unauthorized"},
		{method: "GET", path: "/v1/events/conf-ledger/seats?owners=true", token: buyer("b1"), want: 403, code: "forbidden"},
		{method: "GET", path: "/v1/events/conf-ledger/seats?owners=maybe", want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}
}

func (k *conformance) testAccess(t *testing.T) {
	k.createEvent(t, "conf-access", 1, 1, 4, 300, 8)
	k.must(t, step{method: "PUT", path: "/v1/events/conf-access/access/mgr", token: organiser("org1"), body: `{"level":"manage"}`, want: 200})
	k.must(t, step{method: "PUT", path: "/v1/events/conf-access/access/door", token: organiser("mgr"), body: `{"level":"view"}`, want: 200})
	got := decode[struct {
		Owner  string `json:"owner"`
		Grants []struct{ User, Level string }
	}](t, k.must(t, step{method: "GET", path: "/v1/events/conf-access/access", token: organiser("mgr"), want: 200}))
	assert.Equal(t, "org1", got.Owner)
	require.Len(t, got.Grants, 2)
	assert.Equal(t, "door", got.Grants[0].User)
	assert.Equal(t, "manage", got.Grants[1].Level)
	k.must(t, step{method: "DELETE", path: "/v1/events/conf-access/access/door", token: organiser("mgr"), idemKey: "rev-door", want: 204})
	k.must(t, step{method: "DELETE", path: "/v1/events/conf-access/access/door", token: organiser("mgr"), idemKey: "rev-door", want: 204})
	k.buy(t, "conf-access", "b1", "A-1-1")
	rep := decode[struct {
		Total struct{ Sold, Free int }
	}](t, k.must(t, step{method: "GET", path: "/v1/events/conf-access/report", token: organiser("mgr"), want: 200}))
	assert.Equal(t, 1, rep.Total.Sold)
	assert.Equal(t, 3, rep.Total.Free)
	csv := k.must(t, step{method: "GET", path: "/v1/events/conf-access/report?format=csv", token: organiser("org1"), want: 200})
	assert.Contains(t, string(csv.body), "total,total,,4,3,0,1,")
	for _, s := range []step{
		{method: "PUT", path: "/v1/events/conf-access/access/u9", token: organiser("org1"), body: `{"level":"owner"}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "PUT", path: "/v1/events/conf-access/access/u9", token: organiser("mgr"), body: `{"level":"manage"}`, want: 403, code: "forbidden"},
		{method: "PUT", path: "/v1/events/conf-access/access/u9", body: `{"level":"view"}`, want: 401, code: "unauthorized", invalid: true},
		{method: "PUT", path: "/v1/events/nope/access/u9", token: admin(), body: `{"level":"view"}`, want: 404, code: "event_not_found"},
		{method: "GET", path: "/v1/events/conf-access/access", token: buyer("door"), want: 403, code: "forbidden"},
		{method: "DELETE", path: "/v1/events/conf-access/access/mgr", token: organiser("org2"), want: 403, code: "forbidden"},
		{method: "DELETE", path: "/v1/events/conf-access/access/mgr", token: organiser("mgr"), idemKey: "rev-door", want: 422, code: "idempotency_key_reused"},
		{method: "GET", path: "/v1/events/conf-access/report?format=pdf", token: organiser("org1"), want: 400, code: "invalid_argument", invalid: true},
		{method: "GET", path: "/v1/events/conf-access/report", token: buyer("b1"), want: 403, code: "forbidden"},
	} {
		k.do(t, s)
	}
}

func (k *conformance) testHolds(t *testing.T) {
	k.createEvent(t, "conf-holds", 2, 5, 5, 300, 4)
	h := k.hold(t, "conf-holds", "b1", "A-1-1", "A-1-2")
	assert.Equal(t, "b1", h.Buyer)
	assert.Equal(t, "conf-holds", h.Event)
	assert.Equal(t, "active", h.State)
	assert.Equal(t, []string{"A-1-1", "A-1-2"}, h.Seats)

	for _, s := range []step{
		{method: "GET", path: "/v1/holds/" + h.ID, token: buyer("b1"), want: 200},
		{method: "GET", path: "/v1/holds/" + h.ID + "?consistency=strong", token: admin(), want: 200},
		{method: "GET", path: "/v1/holds/" + h.ID, token: buyer("b2"), want: 403, code: "forbidden"},
		{method: "GET", path: "/v1/holds/" + h.ID, want: 401, code: "unauthorized", invalid: true},
		{method: "GET", path: "/v1/holds/h_0.99999.0", token: buyer("b1"), want: 404, code: "hold_not_found"},
		{method: "GET", path: "/v1/holds/nonsense", token: buyer("b1"), want: 404, code: "hold_not_found"},
		{method: "GET", path: "/v1/holds/bad%20id", token: buyer("b1"), want: 400, code: "invalid_argument", invalid: true},

		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b2"), body: `{"seats":["A-1-2","A-1-3"]}`, want: 409, code: "seat_unavailable"},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), body: `{"seats":["B-1-1","B-1-2","B-1-3"]}`, want: 409, code: "buyer_limit_exceeded"},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), body: `{"seats":["A-9-9"]}`, want: 400, code: "seat_not_found"},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), body: `{"seats":["B-2-2","B-2-2"]}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), body: `{"seats":[]}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), body: `{"seats":["B-2-2"],"seatz":1}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), body: `{"seats":"B-2-2"}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b1"), want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-holds/holds", body: `{"seats":["B-2-2"]}`, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/events/nope/holds", token: buyer("b1"), body: `{"seats":["A-1-1"]}`, want: 404, code: "event_not_found"},

		// Release some seats: the hold keeps the others.
		{method: "DELETE", path: "/v1/holds/" + h.ID, token: buyer("b2"), want: 403, code: "forbidden"},
		{method: "DELETE", path: "/v1/holds/" + h.ID, want: 401, code: "unauthorized", invalid: true},
		{method: "DELETE", path: "/v1/holds/" + h.ID, token: buyer("b1"), body: `{"seats":[]}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "DELETE", path: "/v1/holds/h_0.99999.0", token: buyer("b1"), want: 404, code: "hold_not_found"},
	} {
		k.do(t, s)
	}
	part := decode[holdOut](t, k.must(t, step{method: "DELETE", path: "/v1/holds/" + h.ID, token: buyer("b1"), body: `{"seats":["A-1-2"]}`, want: 200}))
	assert.Equal(t, []string{"A-1-1"}, part.Seats)
	assert.Equal(t, "active", part.State)
	// Release the rest: 204, and the seats are free at once.
	k.must(t, step{method: "DELETE", path: "/v1/holds/" + h.ID, token: buyer("b1"), want: 204})
	assert.Empty(t, k.seatStates(t, "conf-holds", "status=held"))
	got := decode[holdOut](t, k.must(t, step{method: "GET", path: "/v1/holds/" + h.ID, token: buyer("b1"), want: 200}))
	assert.Equal(t, "released", got.State)
	k.do(t, step{method: "DELETE", path: "/v1/holds/" + h.ID, token: buyer("b1"), want: 409, code: "hold_not_active"})

	// A hold with its own TTL.
	k.must(t, step{method: "POST", path: "/v1/events/conf-holds/holds", token: buyer("b3"), body: `{"seats":["B-5-5"],"ttlSeconds":60}`, want: 201})
}

func (k *conformance) testBestAvailable(t *testing.T) {
	k.createEvent(t, "conf-best", 1, 3, 6, 300, 8)
	k.hold(t, "conf-best", "b1", "A-1-3")
	h := decode[holdOut](t, k.must(t, step{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b2"),
		body: map[string]any{"category": "std", "quantity": 3, "adjacent": true}, want: 201}))
	require.Len(t, h.Seats, 3)
	row := h.Seats[0][:strings.LastIndexByte(h.Seats[0], '-')]
	for _, s := range h.Seats {
		assert.True(t, strings.HasPrefix(s, row+"-"), "adjacent seats share a row: %v", h.Seats)
	}
	k.must(t, step{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b3"),
		body: map[string]any{"category": "std", "quantity": 2, "ttlSeconds": 60}, want: 201})
	for _, s := range []step{
		{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b4"), body: `{"category":"nope","quantity":1}`, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b4"), body: `{"category":"std"}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b4"), body: `{"category":"std","quantity":0}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b4"), body: `{"category":"std","quantity":1,"seats":["A-3-1"]}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/events/conf-best/holds", token: buyer("b4"), body: `{"category":"std","quantity":7,"adjacent":true}`, want: 409, code: "seat_unavailable"},
	} {
		k.do(t, s)
	}
}

// waitExpired polls a hold until it reads as expired (the leader's sweep
// marks it). It polls on the test's goroutine: do may stop the test.
func (k *conformance) waitExpired(t *testing.T, id, who string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		a := k.must(t, step{method: "GET", path: "/v1/holds/" + id + "?consistency=strong", token: buyer(who), want: 200})
		if decode[holdOut](t, a).State == "expired" {
			return
		}
	}
	t.Fatalf("hold %s never reads as expired", id)
}

func (k *conformance) testExpiry(t *testing.T) {
	k.createEvent(t, "conf-exp", 1, 2, 2, 1, 8)
	h := k.hold(t, "conf-exp", "b1", "A-1-1")
	k.waitExpired(t, h.ID, "b1")
	k.do(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer("b1"), want: 410, code: "hold_expired"})
	k.do(t, step{method: "DELETE", path: "/v1/holds/" + h.ID, token: buyer("b1"), want: 410, code: "hold_expired"})
	// Its seat is free again.
	k.hold(t, "conf-exp", "b2", "A-1-1")
}

func (k *conformance) testExtend(t *testing.T) {
	// A hold lives at most twice its event's hold TTL: 3 s here, so until
	// 6 s after its creation. Each extension below has about a second to
	// spare either way.
	k.createEvent(t, "conf-ext", 1, 2, 2, 3, 8)
	h := k.hold(t, "conf-ext", "b1", "A-1-1")
	for _, s := range []step{
		{method: "POST", path: "/v1/holds/" + h.ID + "/extend", token: buyer("b2"), body: `{"ttlSeconds":3}`, want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/holds/" + h.ID + "/extend", body: `{"ttlSeconds":3}`, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/holds/" + h.ID + "/extend", token: buyer("b1"), body: `{"ttlSeconds":`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/holds/h_0.99999.0/extend", token: buyer("b1"), body: `{"ttlSeconds":3}`, want: 404, code: "hold_not_found"},
	} {
		k.do(t, s)
	}
	time.Sleep(1500 * time.Millisecond)
	// 1.5 s after creation: it now expires at 4.5 s.
	ext := decode[holdOut](t, k.must(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/extend", token: buyer("b1"), body: `{"ttlSeconds":3}`, want: 200}))
	before, err := time.Parse(time.RFC3339Nano, h.ExpiresAt)
	require.NoError(t, err)
	after, err := time.Parse(time.RFC3339Nano, ext.ExpiresAt)
	require.NoError(t, err)
	assert.True(t, after.After(before), "the hold expires later: %s, was %s", after, before)
	assert.Equal(t, "active", ext.State)
	// 3.5 s after creation, still active: now + 3 s is past 6 s.
	time.Sleep(2 * time.Second)
	k.do(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/extend", token: buyer("b1"), body: `{"ttlSeconds":3}`, want: 409, code: "hold_extension_limit"})
	k.waitExpired(t, h.ID, "b1")
	k.do(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/extend", token: buyer("b1"), body: `{"ttlSeconds":3}`, want: 410, code: "hold_expired"})
}

func (k *conformance) testPurchase(t *testing.T) {
	k.createEvent(t, "conf-buy", 1, 5, 5, 300, 8)
	h := k.hold(t, "conf-buy", "b1", "A-1-1", "A-1-2")
	for _, s := range []step{
		{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer("b2"), want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", body: `{"paymentMethod":"pm_card_visa"}`, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer("b1"), body: map[string]any{"paymentMethod": strings.Repeat("p", 65)}, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/holds/h_0.99999.0/purchase", token: buyer("b1"), want: 404, code: "hold_not_found"},
	} {
		k.do(t, s)
	}
	o := decode[orderOut](t, k.must(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer("b1"),
		body: `{"paymentMethod":"pm_card_visa"}`, want: 201}))
	assert.Equal(t, h.ID, o.Hold)
	assert.Equal(t, "b1", o.Buyer)
	assert.Equal(t, "conf-buy", o.Event)
	assert.Equal(t, []string{"A-1-1", "A-1-2"}, o.Seats)
	assert.Equal(t, int64(2*5000), o.AmountCents)
	assert.Equal(t, "paid", o.State)
	k.do(t, step{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer("b1"), want: 409, code: "hold_not_active"})

	got := decode[holdOut](t, k.must(t, step{method: "GET", path: "/v1/holds/" + h.ID, token: buyer("b1"), want: 200}))
	assert.Equal(t, "purchased", got.State)
	assert.Equal(t, o.ID, got.Order)
	assert.Equal(t, map[string]string{"A-1-1": "sold", "A-1-2": "sold"}, k.seatStates(t, "conf-buy", "status=sold"))

	for _, s := range []step{
		{method: "GET", path: "/v1/orders/" + o.ID, token: buyer("b1"), want: 200},
		{method: "GET", path: "/v1/orders/" + o.ID + "?consistency=strong", token: admin(), want: 200},
		{method: "GET", path: "/v1/orders/" + o.ID, token: buyer("b2"), want: 403, code: "forbidden"},
		{method: "GET", path: "/v1/orders/" + o.ID, want: 401, code: "unauthorized", invalid: true},
		{method: "GET", path: "/v1/orders/o_0.99999", token: buyer("b1"), want: 404, code: "order_not_found"},
		{method: "GET", path: "/v1/orders/nonsense", token: buyer("b1"), want: 404, code: "order_not_found"},
		{method: "GET", path: "/v1/orders/bad%20id", token: buyer("b1"), want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}
	// An admin may buy a buyer's hold for them; the order is the buyer's.
	h2 := k.hold(t, "conf-buy", "b3", "A-2-1")
	o2 := decode[orderOut](t, k.must(t, step{method: "POST", path: "/v1/holds/" + h2.ID + "/purchase", token: admin(), want: 201}))
	assert.Equal(t, "b3", o2.Buyer)
}

func (k *conformance) testMine(t *testing.T) {
	k.createEvent(t, "conf-mine", 1, 2, 5, 300, 8)
	h := k.hold(t, "conf-mine", "m1", "A-1-1")
	o := k.buy(t, "conf-mine", "m1", "A-2-1")
	holds := decode[struct{ Holds []holdOut }](t, k.must(t, step{method: "GET", path: "/v1/me/holds", token: buyer("m1"), want: 200}))
	var ids []string
	for _, x := range holds.Holds {
		assert.Equal(t, "m1", x.Buyer)
		ids = append(ids, x.ID)
	}
	assert.Contains(t, ids, h.ID)
	orders := decode[struct{ Orders []orderOut }](t, k.must(t, step{method: "GET", path: "/v1/me/orders", token: buyer("m1"), want: 200}))
	require.Len(t, orders.Orders, 1)
	assert.Equal(t, o.ID, orders.Orders[0].ID)
	// Nothing yet is an empty list.
	k.must(t, step{method: "GET", path: "/v1/me/holds", token: buyer("nobody"), want: 200})
	k.must(t, step{method: "GET", path: "/v1/me/orders", token: buyer("nobody"), want: 200})
	k.do(t, step{method: "GET", path: "/v1/me/holds", want: 401, code: "unauthorized", invalid: true})
	k.do(t, step{method: "GET", path: "/v1/me/orders", want: 401, code: "unauthorized", invalid: true})
}

func (k *conformance) testCancel(t *testing.T) {
	k.createEvent(t, "conf-cancel", 1, 2, 5, 300, 8)
	o := k.buy(t, "conf-cancel", "c1", "A-1-1", "A-1-2")
	for _, s := range []step{
		{method: "POST", path: "/v1/orders/" + o.ID + "/cancel", token: buyer("c2"), want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/orders/" + o.ID + "/cancel", want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/orders/o_0.99999/cancel", token: buyer("c1"), want: 404, code: "order_not_found"},
		{method: "POST", path: "/v1/orders/bad%20id/cancel", token: buyer("c1"), want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}
	c := decode[orderOut](t, k.must(t, step{method: "POST", path: "/v1/orders/" + o.ID + "/cancel", token: buyer("c1"), want: 200}))
	// The refund is made at once when the gateway answers.
	assert.Contains(t, []string{"cancelled", "refunded"}, c.State)
	assert.Empty(t, k.seatStates(t, "conf-cancel", "status=sold"), "the seats are free at once")
	k.do(t, step{method: "POST", path: "/v1/orders/" + o.ID + "/cancel", token: buyer("c1"), want: 409, code: "order_not_active"})
}

func (k *conformance) testExchange(t *testing.T) {
	k.createEvent(t, "conf-swap", 1, 3, 5, 300, 8)
	o := k.buy(t, "conf-swap", "x1", "A-1-1", "A-1-2")
	k.hold(t, "conf-swap", "x2", "A-3-3")
	for _, s := range []step{
		{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", token: buyer("x1"), body: `{"release":["A-1-1"],"take":["A-3-3"]}`, want: 409, code: "seat_unavailable"},
		{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", token: buyer("x1"), body: `{"release":["A-1-1"],"take":["A-2-1","A-2-2"]}`, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", token: buyer("x1"), body: `{"release":["A-2-5"],"take":["A-2-4"]}`, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", token: buyer("x1"), body: `{"release":["A-1-1"]}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", token: buyer("x2"), body: `{"release":["A-1-1"],"take":["A-2-1"]}`, want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", body: `{"release":["A-1-1"],"take":["A-2-1"]}`, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/orders/o_0.99999/exchange", token: buyer("x1"), body: `{"release":["A-1-1"],"take":["A-2-1"]}`, want: 404, code: "order_not_found"},
	} {
		k.do(t, s)
	}
	x := decode[orderOut](t, k.must(t, step{method: "POST", path: "/v1/orders/" + o.ID + "/exchange", token: buyer("x1"),
		body: `{"release":["A-1-1"],"take":["A-2-5"]}`, want: 200}))
	assert.ElementsMatch(t, []string{"A-1-2", "A-2-5"}, x.Seats)
	assert.Equal(t, "paid", x.State)
	assert.Equal(t, map[string]string{"A-1-2": "sold", "A-2-5": "sold"}, k.seatStates(t, "conf-swap", "status=sold"))
}

func (k *conformance) testIdempotency(t *testing.T) {
	k.createEvent(t, "conf-idem", 1, 2, 5, 300, 8)
	first := step{method: "POST", path: "/v1/events/conf-idem/holds", token: buyer("i1"), body: `{"seats":["A-1-1"]}`, idemKey: "idem-hold-1", want: 201}
	h := decode[holdOut](t, k.must(t, first))
	// The same key and request, through another node: the first answer again.
	a := k.must(t, first)
	assert.Equal(t, h.ID, decode[holdOut](t, a).ID, "a retry gets the first hold")
	assert.Equal(t, "true", a.header.Get("Idempotent-Replayed"))
	k.do(t, step{method: "POST", path: "/v1/events/conf-idem/holds", token: buyer("i1"), body: `{"seats":["A-1-2"]}`, idemKey: "idem-hold-1", want: 422, code: "idempotency_key_reused"})
	assert.Equal(t, map[string]string{"A-1-1": "held"}, k.seatStates(t, "conf-idem", "status=held"))

	buy := step{method: "POST", path: "/v1/holds/" + h.ID + "/purchase", token: buyer("i1"), body: `{"paymentMethod":"pm_card_visa"}`, idemKey: "idem-buy-1", want: 201}
	o := decode[orderOut](t, k.must(t, buy))
	o2 := decode[orderOut](t, k.must(t, buy))
	assert.Equal(t, o.ID, o2.ID, "a retried purchase gets the first order")
	patch := step{method: "PATCH", path: "/v1/events/conf-idem", token: organiser("org1"), body: `{"location":"Bonn"}`, idemKey: "idem-patch-1", want: 200}
	k.must(t, patch)
	k.must(t, patch)
	k.do(t, step{method: "PATCH", path: "/v1/events/conf-idem", token: organiser("org1"), body: `{"location":"Köln"}`, idemKey: "idem-patch-1", want: 422, code: "idempotency_key_reused"})
	k.do(t, step{method: "POST", path: "/v1/events/conf-idem/holds", token: buyer("i1"), body: `{"seats":["A-1-3"]}`, idemKey: strings.Repeat("k", 129), want: 400, code: "invalid_argument", invalid: true})
}

func (k *conformance) testCluster(t *testing.T) {
	for _, m := range k.c.Members {
		a := k.must(t, step{method: "GET", path: "/v1/cluster", want: 200, on: m})
		var cl struct {
			Node   string
			Nodes  []struct{ ID string }
			Shards []struct{ Leader string }
		}
		require.NoError(t, json.Unmarshal(a.body, &cl))
		assert.Equal(t, m.ID, cl.Node)
		assert.Len(t, cl.Nodes, 3)
		assert.Len(t, cl.Shards, shards)
	}

	// A member that never starts: 4 voters, 3 of them up, keep a quorum.
	n9 := map[string]any{"id": "n9", "raftAddr": "127.0.0.1:1", "httpAddr": "127.0.0.1:2"}
	for _, s := range []step{
		{method: "POST", path: "/v1/cluster/members", token: buyer("b1"), body: n9, want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/cluster/members", body: n9, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/cluster/members", token: admin(), body: `{"id":"n9"}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/cluster/members?shard=99", token: admin(), body: n9, want: 400, code: "invalid_argument"},
		{method: "DELETE", path: "/v1/cluster/members/n9", token: buyer("b1"), want: 403, code: "forbidden"},
		{method: "DELETE", path: "/v1/cluster/members/n9", want: 401, code: "unauthorized", invalid: true},
		{method: "DELETE", path: "/v1/cluster/members/bad%20id", token: admin(), want: 400, code: "invalid_argument", invalid: true},
	} {
		k.do(t, s)
	}
	res := decode[map[string]any](t, k.must(t, step{method: "POST", path: "/v1/cluster/members", token: admin(), body: n9, want: 200}))
	assert.Equal(t, true, res["ok"])
	a := k.must(t, step{method: "GET", path: "/v1/cluster", want: 200, on: k.c.Leader(0)})
	assert.Contains(t, string(a.body), `"n9"`)
	k.must(t, step{method: "DELETE", path: "/v1/cluster/members/n9?shard=0", token: admin(), want: 200})
	k.must(t, step{method: "DELETE", path: "/v1/cluster/members/n9", token: admin(), want: 200})
	for s := 0; s < shards; s++ {
		assert.NotContains(t, k.c.Leader(s).Node.Status()[s].Replicas, "n9", "shard %d", s)
	}

	to := k.c.Follower(0)
	for _, s := range []step{
		{method: "POST", path: "/v1/cluster/transfer-leadership", token: buyer("b1"), body: `{"shard":0}`, want: 403, code: "forbidden"},
		{method: "POST", path: "/v1/cluster/transfer-leadership", body: `{"shard":0}`, want: 401, code: "unauthorized", invalid: true},
		{method: "POST", path: "/v1/cluster/transfer-leadership", token: admin(), body: `{"to":"n1"}`, want: 400, code: "invalid_argument", invalid: true},
		{method: "POST", path: "/v1/cluster/transfer-leadership", token: admin(), body: `{"shard":99}`, want: 400, code: "invalid_argument"},
		{method: "POST", path: "/v1/cluster/transfer-leadership", token: admin(), body: `{"shard":0,"to":"nobody"}`, want: 404, code: "member_not_found"},
	} {
		k.do(t, s)
	}
	out := decode[map[string]any](t, k.must(t, step{method: "POST", path: "/v1/cluster/transfer-leadership", token: admin(),
		body: map[string]any{"shard": 0, "to": to.ID}, want: 200}))
	assert.Equal(t, true, out["ok"])
	require.Eventually(t, func() bool { return to.Node.IsLeader(0) }, 10*time.Second, 10*time.Millisecond)
	k.c.WaitReady()
	k.must(t, step{method: "POST", path: "/v1/cluster/transfer-leadership", token: admin(), body: `{"shard":1}`, want: 200})
	k.c.WaitReady()
}

// testCoverage fails for every operation of the document that no step
// answered with the 2xx it expected, so the document cannot grow untested.
func (k *conformance) testCoverage(t *testing.T) {
	for _, o := range operations(k.doc) {
		op := o.String()
		if !k.covered[op] {
			t.Errorf("%s (%s): no step got a validated success answer", op, o.op.OperationID)
		}
		var untested []string
		for code := range o.op.Responses.Map() {
			if n, _ := strconv.Atoi(code); !k.seen[op][n] {
				untested = append(untested, code)
			}
		}
		slices.Sort(untested)
		if len(untested) > 0 {
			t.Logf("%s: documented but not answered in this run: %s", op, strings.Join(untested, " "))
		}
	}
}

type placeOut struct {
	State      string `json:"state"`
	Position   *int64 `json:"position"`
	PlaceToken string `json:"placeToken"`
	Pass       *struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expiresAt"`
	} `json:"pass"`
}

// testQueue drives the waiting room: protect, join, the place read with a
// bearer or a place token, its stream, and a hold with and without a pass.
func (k *conformance) testQueue(t *testing.T) {
	k.createEvent(t, "conf-queue", 1, 1, 4, 600, 4)
	path := "/v1/events/conf-queue/queue"
	k.do(t, step{method: "GET", path: path, want: 404, code: "queue_not_found"})
	opens := time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	for _, s := range []step{
		{method: "PUT", path: path, token: buyer("u1"), body: map[string]any{"opensAt": opens}, want: 403, code: "forbidden"},
		{method: "PUT", path: path, token: organiser("org2"), body: map[string]any{"opensAt": opens}, want: 403, code: "forbidden"},
		{method: "PUT", path: path, token: organiser("org1"), body: map[string]any{"opensAt": "soon"}, want: 400, code: "invalid_argument", invalid: true},
		{method: "PUT", path: path, token: organiser("org1"), body: map[string]any{"opensAt": opens, "admitPercent": 0}, want: 400, code: "invalid_argument", invalid: true},
		{method: "PUT", path: path, body: map[string]any{"opensAt": opens}, want: 401, code: "unauthorized", invalid: true},
		{method: "PUT", path: "/v1/events/nope/queue", token: organiser("org1"), body: map[string]any{"opensAt": opens}, want: 404, code: "event_not_found"},
		{method: "POST", path: "/v1/events/conf-seats/queue", token: buyer("u1"), want: 404, code: "queue_not_found"},
	} {
		k.do(t, s)
	}
	k.must(t, step{method: "PUT", path: path, token: organiser("org1"), body: map[string]any{"opensAt": opens, "passTTLSeconds": 300}, want: 200})
	k.settle(t) // a PUT is not settled by do: the next reads are local
	k.must(t, step{method: "GET", path: path, want: 200})
	// Not joined: no place, and no hold.
	k.do(t, step{method: "GET", path: path + "/me", token: buyer("qu1"), want: 404, code: "queue_not_found"})
	k.do(t, step{method: "POST", path: "/v1/events/conf-queue/holds", token: buyer("qu1"),
		body: map[string]any{"seats": []string{"A-1-1"}}, want: 403, code: "admission_required"})
	first := decode[placeOut](t, k.must(t, step{method: "POST", path: path, token: buyer("qu1"), idemKey: "join-1", want: 200}))
	again := decode[placeOut](t, k.must(t, step{method: "POST", path: path, token: buyer("qu1"), want: 200}))
	require.Equal(t, first.PlaceToken, again.PlaceToken, "one place per buyer")
	k.do(t, step{method: "GET", path: path + "/me?place=bx1.forged.token", want: 401, code: "unauthorized"})
	// The leader opens the queue and admits: one buyer, four free seats.
	var me placeOut
	require.Eventually(t, func() bool {
		me = decode[placeOut](t, k.must(t, step{method: "GET", path: path + "/me?place=" + first.PlaceToken, want: 200}))
		return me.State == "admitted"
	}, 20*time.Second, 50*time.Millisecond, "qu1 is admitted")
	require.NotNil(t, me.Pass)
	k.must(t, step{method: "GET", path: path + "/me", token: buyer("qu1"), want: 200})
	s := k.must(t, step{method: "GET", path: path + "/stream?place=" + first.PlaceToken, want: 200})
	assert.Contains(t, string(s.body), `"state":"admitted"`)
	// The pass: not without it, not someone else's, and with it.
	k.do(t, step{method: "POST", path: "/v1/events/conf-queue/holds", token: buyer("qu2"), header: map[string]string{"X-Admission-Pass": me.Pass.Token},
		body: map[string]any{"seats": []string{"A-1-1"}}, want: 403, code: "admission_required"})
	k.must(t, step{method: "POST", path: "/v1/events/conf-queue/holds", token: buyer("qu1"), header: map[string]string{"X-Admission-Pass": me.Pass.Token},
		body: map[string]any{"seats": []string{"A-1-1"}}, want: 201})
}

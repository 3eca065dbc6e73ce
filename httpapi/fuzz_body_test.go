package httpapi

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"boxoffice"
)

// Fuzz targets of the request decoders: each calls exactly the function its
// handler calls (readHoldRequest, readEventRequest, ...) and checks that a
// rejection is a 400 with a stable code and a detail, and that a body it
// accepts keeps the promises of its shape and survives encoding and decoding
// again unchanged. fuzz_handler_test.go fuzzes whole requests.

func bodyCtx(body []byte) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/v1/fuzz")
	ctx.Request.SetBody(body)
	return ctx
}

// requireBadInput: err is a *boxoffice.Error of one of codes (by default
// invalid_argument), answered 400, with a detail.
func requireBadInput(t *testing.T, err error, codes ...boxoffice.Code) {
	t.Helper()
	if len(codes) == 0 {
		codes = []boxoffice.Code{boxoffice.CodeInvalidArgument}
	}
	var e *boxoffice.Error
	require.True(t, errors.As(err, &e), "error without a code: %v", err)
	require.Contains(t, codes, e.Code, "%v", err)
	require.Equal(t, 400, StatusOf(e.Code))
	require.NotEmpty(t, e.Detail)
}

// reencode marshals v as JSON.
func reencode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// validSeatList: 1..SeatsPerHoldMax ids, each a valid id, none twice.
func validSeatList(t *testing.T, seats []string) {
	t.Helper()
	require.NotEmpty(t, seats)
	require.LessOrEqual(t, len(seats), boxoffice.SeatsPerHoldMax)
	for _, s := range seats {
		require.True(t, boxoffice.ValidID(s), "seat %q", s)
	}
	require.Len(t, slices.Compact(slices.Sorted(slices.Values(seats))), len(seats), "a seat twice in %q", seats)
}

var jsonSeeds = []string{"", " ", "null", "{}", "[]", `"x"`, "0", "{} {}", `{"a":1}`, "{", "\xff", `{"seats":null}`}

func FuzzHoldBody(f *testing.F) {
	for _, s := range append([]string{
		`{"seats":["A-1-1","A-1-2"]}`,
		`{"seats":["A-1-1"],"ttlSeconds":3600}`,
		`{"seats":["A-1-1","A-1-1"]}`,
		`{"seats":["A-1-1"],"category":"floor"}`,
		`{"category":"floor","quantity":4,"adjacent":true}`,
		`{"category":"floor","quantity":33}`,
		`{"category":"floor","quantity":1,"ttlSeconds":-1}`,
		`{"SEATS":["A-1-1"],"Category":""}`,
		`{"seats":["A-1-1"],"seats":[]}`,
		`{"seats":["Ä-1-1"]}`,
		`{"seats":["A-1-1"],"quantity":1e3}`,
		`{"category":"floor","quantity":9223372036854775808}`,
		`{"seats":[` + strings.Repeat(`"A-1-1",`, 32) + `"A-1-2"]}`,
		`{"area":"PIT","quantity":2}`,
		`{"area":"PIT","quantity":2,"seats":["GA-PIT-1"]}`,
		`{"area":"PIT","quantity":2,"category":"ga"}`,
		`{"area":"PIT","quantity":1,"adjacent":true}`,
		`{"area":"PIT","quantity":0}`,
		`{"area":"P-IT","quantity":33}`,
		`{"area":"","quantity":2}`,
	}, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := readHoldRequest(bodyCtx(body))
		if err != nil {
			requireBadInput(t, err, boxoffice.CodeInvalidArgument, boxoffice.CodeSeatNotFound)
			return
		}
		require.True(t, in.TTLSeconds >= 0 && in.TTLSeconds <= boxoffice.HoldTTLMax)
		switch {
		case in.Area != "":
			require.True(t, boxoffice.ValidID(in.Area), "area %q", in.Area)
			require.True(t, len(in.Seats) == 0 && in.Category == "" && !in.Adjacent, "area with seats or category: %+v", in)
			require.True(t, in.Quantity >= 1 && in.Quantity <= boxoffice.SeatsPerHoldMax, "quantity %d", in.Quantity)
		case len(in.Seats) > 0:
			validSeatList(t, in.Seats)
			require.True(t, in.Category == "" && in.Quantity == 0 && !in.Adjacent, "seats and category: %+v", in)
		default:
			require.True(t, boxoffice.ValidID(in.Category), "category %q", in.Category)
			require.True(t, in.Quantity >= 1 && in.Quantity <= boxoffice.SeatsPerHoldMax, "quantity %d", in.Quantity)
		}
		again, err := readHoldRequest(bodyCtx(reencode(t, in)))
		require.NoError(t, err)
		require.Equal(t, in, again)
	})
}

// FuzzEventBody: testdata/fuzz/FuzzEventBody holds the startsAt values whose
// answers could not be sent back (UTC years 10000 and -1).
func FuzzEventBody(f *testing.F) {
	for _, s := range append([]string{
		`{"id":"arena-2026-12-01","name":"Night","type":"concert","startsAt":"2026-12-01T20:00:00Z","location":"Berlin",
		  "categories":[{"id":"floor","name":"Floor","priceCents":9900}],
		  "venue":{"sections":[{"id":"A","category":"floor","rows":100,"seatsPerRow":50}]},
		  "limits":{"maxSeatsPerBuyer":8,"holdTTLSeconds":600}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`,
		`{"id":"e1","name":"E","startsAt":"2026-01-01T00:00:00.123456789+02:00","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`,
		`{"id":"e1","name":"E","startsAt":"1970-01-01T00:00:00Z","organiser":"someone","capacity":7,"categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`,
		`{"id":"e1","name":"E","startsAt":"yesterday","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1000,"seatsPerRow":201}]},"limits":{"maxSeatsPerBuyer":-1}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]},"limits":null}`,
		`{"id":"e1","name":"E","categories":[{"id":"c","priceCents":100}],"venueId":"arena"}`,
		`{"id":"e1","name":"E","categories":[{"id":"c","priceCents":100}],"venueId":"arena","venueVersion":3}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venueId":"arena","venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"}],"venueVersion":2,"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}}`,
		`{"id":"e1","name":"E","categories":[{"id":"c"},{"id":"g"}],"venue":{"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1,"position":{"x":1,"y":-2}}],"areas":[{"id":"PIT","category":"g","capacity":40000}]}}`,
		`{"id":"e1","name":"E","categories":[{"id":"g"}],"venue":{"sections":[],"areas":[{"id":"PIT","category":"g","capacity":0}]}}`,
		`{"id":"e1","name":"E","categories":[{"id":"g"}],"venue":{"sections":[{"id":"GA","category":"g","rows":1,"seatsPerRow":1}],"areas":[{"id":"PIT","category":"g","capacity":5}]}}`,
	}, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := readEventRequest(bodyCtx(body))
		if err != nil {
			requireBadInput(t, err)
			return
		}
		if ev.VenueID != "" {
			// The layout comes from the venue, on the leader: the
			// request has none of its own.
			require.True(t, boxoffice.ValidID(ev.VenueID), "venueId %q", ev.VenueID)
			require.Empty(t, ev.Venue.Sections)
			require.Empty(t, ev.Venue.Areas)
			return
		}
		require.NoError(t, ev.Validate())
		require.Empty(t, ev.Organiser, "the organiser is the caller, never the body's")
		// What the API answers for the event, sent back as a new event,
		// is the same event.
		again, err := readEventRequest(bodyCtx(reencode(t, eventOut(&ev))))
		require.NoError(t, err, "the answer for %+v is not a valid request", ev)
		require.Equal(t, ev, again)
	})
}

// FuzzVenueBody: the body of POST /v1/venues and PUT /v1/venues/{venue}.
func FuzzVenueBody(f *testing.F) {
	for _, s := range append([]string{
		`{"id":"arena","name":"Arena","location":"Berlin","categories":[{"id":"floor","name":"Floor"},{"id":"ga","name":"Standing"}],
		  "sections":[{"id":"A","category":"floor","rows":100,"seatsPerRow":50,"position":{"x":10,"y":20}}],
		  "areas":[{"id":"PIT","category":"ga","capacity":40000}]}`,
		`{"id":"v","name":"V","categories":[{"id":"ga"}],"areas":[{"id":"PIT","category":"ga","capacity":1}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1},{"id":"A","category":"c","rows":1,"seatsPerRow":2}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"areas":[{"id":"A","category":"c","capacity":200001}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}],"areas":[{"id":"A","category":"c","capacity":2}]}`,
		`{"id":"v","name":"V","version":7,"owner":"x","capacity":1,"updatedAt":"2026-01-01T00:00:00Z","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1,"position":{"x":1000001,"y":0}}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":2,"seatsPerRow":4,"rowSeats":[3,4],"gaps":["2-2"],"flags":[{"flag":"accessible","seats":["1-1"]}]}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":2,"seatsPerRow":4,"rowSeats":[],"gaps":[],"flags":[]}],"areas":[]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":2,"seatsPerRow":4,"rowSeats":[5,4]}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":1,"gaps":["1-1"]}]}`,
		`{"id":"v","name":"V","categories":[{"id":"c"}],"sections":[{"id":"A","category":"c","rows":1,"seatsPerRow":2,"flags":[{"flag":"x","seats":["1-3"]}]}]}`,
	}, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := readVenueRequest(bodyCtx(body), "")
		if err != nil {
			requireBadInput(t, err)
			return
		}
		require.NoError(t, v.Validate())
		require.True(t, v.Version == 0 && v.Owner == "", "version and owner are the server's, never the body's: %+v", v)
		require.Positive(t, v.Layout().Capacity(), "a venue with no seats")
		again, err := readVenueRequest(bodyCtx(reencode(t, venueOut(&v))), v.ID)
		require.NoError(t, err, "the answer for %+v is not a valid request", v)
		require.Equal(t, v, again)
	})
}

// patchBase is the event FuzzEventPatch patches.
func patchBase() boxoffice.Event {
	return boxoffice.Event{
		ID: "e1", Name: "Night", Type: "concert", Location: "Berlin", StartsAtMs: 1_790_000_000_000, Organiser: "o1",
		Categories: []boxoffice.Category{{ID: "floor", Name: "Floor", PriceCents: 9900}, {ID: "balcony", PriceCents: 4900}},
		Venue:      boxoffice.Venue{Sections: []boxoffice.Section{{ID: "A", Category: "floor", Rows: 10, SeatsPerRow: 20}, {ID: "B", Category: "balcony", Rows: 2, SeatsPerRow: 5}}},
		Limits:     boxoffice.Limits{MaxSeatsPerBuyer: 8, HoldTTLSeconds: 600},
	}
}

func FuzzEventPatch(f *testing.F) {
	for _, s := range append([]string{
		`{"name":"Matinee"}`,
		`{"id":"e1","location":"","type":"opera"}`,
		`{"id":"e2"}`,
		`{"startsAt":""}`,
		`{"startsAt":"2027-01-01T10:00:00+01:00"}`,
		`{"startsAt":"2027-13-01T10:00:00Z"}`,
		`{"limits":{"holdTTLSeconds":30}}`,
		`{"limits":{"maxSeatsPerBuyer":0}}`,
		`{"limits":{}}`,
		`{"categories":[{"id":"floor","priceCents":1}]}`,
		`{"categories":[]}`,
		`{"venue":{"sections":[{"id":"A","category":"floor","rows":10,"seatsPerRow":20},{"id":"C","category":"floor","rows":1,"seatsPerRow":1}]}}`,
		`{"venue":null,"name":null}`,
		`{"organiser":"me"}`,
	}, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := readEventPatch(bodyCtx(body), "e1")
		if err != nil {
			requireBadInput(t, err)
			return
		}
		base := patchBase()
		ev, err := p.apply(base)
		require.Equal(t, patchBase(), base, "apply changed the event it was given")
		if err != nil {
			requireBadInput(t, err)
			return
		}
		require.NoError(t, ev.Validate())
		require.Equal(t, base.ID, ev.ID)
		require.Equal(t, base.Organiser, ev.Organiser, "a patch never changes the organiser")
		// Each field is the patch's if present, the event's if not.
		field := func(name string, present bool, patched, kept, got any) {
			if present {
				require.Equal(t, patched, got, name)
			} else {
				require.Equal(t, kept, got, name)
			}
		}
		deref := func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		}
		field("name", p.Name != nil, deref(p.Name), base.Name, ev.Name)
		field("type", p.Type != nil, deref(p.Type), base.Type, ev.Type)
		field("location", p.Location != nil, deref(p.Location), base.Location, ev.Location)
		if p.Categories != nil {
			require.Equal(t, *p.Categories, ev.Categories)
		} else {
			require.Equal(t, base.Categories, ev.Categories)
		}
		if p.Venue != nil {
			require.Equal(t, *p.Venue, ev.Venue)
		} else {
			require.Equal(t, base.Venue, ev.Venue)
		}
		if p.StartsAt == nil {
			require.Equal(t, base.StartsAtMs, ev.StartsAtMs)
		}
		if p.Limits == nil || p.Limits.MaxSeatsPerBuyer == nil {
			require.Equal(t, base.Limits.MaxSeatsPerBuyer, ev.Limits.MaxSeatsPerBuyer)
		}
		if p.Limits == nil || p.Limits.HoldTTLSeconds == nil {
			require.Equal(t, base.Limits.HoldTTLSeconds, ev.Limits.HoldTTLSeconds)
		}
		// The patched event, as the API answers it, is a valid new event.
		again, err := readEventRequest(bodyCtx(reencode(t, eventOut(&ev))))
		require.NoError(t, err, "the answer for %+v is not a valid request", ev)
		ev.Organiser = ""
		require.Equal(t, ev, again)
	})
}

// Kinds of FuzzSmallBodies.
const (
	bodyRelease = iota
	bodyExtend
	bodyPurchase
	bodyExchange
	bodyMember
	bodyTransfer
	bodyKinds
)

// fuzzShards is the shard count the transfer body is read against.
const fuzzShards = 4

// FuzzSmallBodies fuzzes the bodies of release, extend, purchase,
// exchange, add-member and transfer-leadership, chosen by kind.
func FuzzSmallBodies(f *testing.F) {
	seeds := map[int][]string{
		bodyRelease:  {``, `{"seats":["A-1-1"]}`, `{"seats":[]}`, `{"seats":["A-1-1","A-1-1"]}`, `{"seats":["a b"]}`},
		bodyExtend:   {``, `{"ttlSeconds":60}`, `{"ttlSeconds":0}`, `{"ttlSeconds":3601}`, `{"ttlSeconds":-1}`, `{"ttlSeconds":1.5}`},
		bodyPurchase: {``, `{"paymentMethod":"pm_card_visa"}`, `{"paymentMethod":"` + strings.Repeat("p", 65) + `"}`, `{"paymentMethod":"\u00e9\ud800"}`, `{"paymentMethod":7}`},
		bodyExchange: {`{"release":["A-1-1"],"take":["A-2-1"]}`, `{"release":["A-1-1"],"take":[]}`, `{"release":["A-1-1","A-1-2"],"take":["A-2-1"]}`, `{"take":["A-2-1"]}`},
		bodyMember:   {`{"id":"n4","raftAddr":"10.0.0.4:7000","httpAddr":"10.0.0.4:8080"}`, `{"id":"n4","raftAddr":"[::1]:7000","httpAddr":":8080"}`, `{"id":"n 4","raftAddr":"x","httpAddr":"y:"}`},
		bodyTransfer: {`{"shard":0}`, `{"shard":3,"to":"n2"}`, `{"shard":4}`, `{"to":"n2"}`, `{"shard":-1}`, `{"shard":0,"to":"n 2"}`},
	}
	for kind, ss := range seeds {
		for _, s := range append(ss, jsonSeeds...) {
			f.Add(uint8(kind), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		switch kind % bodyKinds {
		case bodyRelease:
			in, err := readReleaseRequest(bodyCtx(body))
			if err != nil {
				requireBadInput(t, err, boxoffice.CodeInvalidArgument, boxoffice.CodeSeatNotFound)
				return
			}
			if len(body) == 0 {
				require.Nil(t, in.Seats, "no body releases the whole hold")
				return
			}
			validSeatList(t, in.Seats)
			again, err := readReleaseRequest(bodyCtx(reencode(t, in)))
			require.NoError(t, err)
			require.Equal(t, in, again)
		case bodyExtend:
			in, err := readExtendRequest(bodyCtx(body))
			if err != nil {
				requireBadInput(t, err)
				return
			}
			require.True(t, in.TTLSeconds >= 0 && in.TTLSeconds <= boxoffice.HoldTTLMax)
			again, err := readExtendRequest(bodyCtx(reencode(t, in)))
			require.NoError(t, err)
			require.Equal(t, in, again)
		case bodyPurchase:
			in, err := readPurchaseRequest(bodyCtx(body))
			if err != nil {
				requireBadInput(t, err)
				return
			}
			require.LessOrEqual(t, len(in.PaymentMethod), boxoffice.IDLenMax)
			again, err := readPurchaseRequest(bodyCtx(reencode(t, in)))
			require.NoError(t, err)
			require.Equal(t, in, again)
		case bodyExchange:
			in, err := readExchangeRequest(bodyCtx(body))
			if err != nil {
				requireBadInput(t, err, boxoffice.CodeInvalidArgument, boxoffice.CodeSeatNotFound)
				return
			}
			validSeatList(t, in.Release)
			validSeatList(t, in.Take)
			require.Len(t, in.Take, len(in.Release))
			again, err := readExchangeRequest(bodyCtx(reencode(t, in)))
			require.NoError(t, err)
			require.Equal(t, in, again)
		case bodyMember:
			m, err := readMemberRequest(bodyCtx(body))
			if err != nil {
				requireBadInput(t, err)
				return
			}
			require.True(t, boxoffice.ValidID(m.ID))
			require.True(t, validAddr(m.RaftAddr) && validAddr(m.HTTPAddr), "%+v", m)
			again, err := readMemberRequest(bodyCtx(reencode(t, m)))
			require.NoError(t, err)
			require.Equal(t, m, again)
		case bodyTransfer:
			in, err := readTransferRequest(bodyCtx(body), fuzzShards)
			if err != nil {
				requireBadInput(t, err)
				return
			}
			require.NotNil(t, in.Shard)
			require.True(t, *in.Shard >= 0 && *in.Shard < fuzzShards)
			require.True(t, in.To == "" || boxoffice.ValidID(in.To), "to %q", in.To)
			again, err := readTransferRequest(bodyCtx(reencode(t, in)), fuzzShards)
			require.NoError(t, err)
			require.Equal(t, in, again)
		}
	})
}

// FuzzQuery fuzzes the query parameters every route reads: the event
// search, the seat filter, consistency, and the shard of membership routes.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "q=night&type=Concert&location=berlin&limit=10&cursor=e1",
		"from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00%2B01:00", "from=2026-01-01", "limit=0", "limit=501", "limit=500",
		"limit=%2B5", "limit=1e2", "cursor=a%20b", "q=" + strings.Repeat("x", 201), "q=%C4%B0", "q=%ff%fe",
		"status=free&section=A&category=floor", "status=FREE", "status=", "consistency=strong", "consistency=eventual",
		"shard=3", "shard=4", "shard=-1", "shard=01", "shard=", "q=a&q=b", "limit=10&limit=x", "%zz=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.SetRequestURI("/v1/events?" + query)

		q, err := parseEventQuery(ctx)
		if err != nil {
			requireBadInput(t, err)
		} else {
			require.True(t, q.limit >= 1 && q.limit <= pageMax, "limit %d", q.limit)
			require.True(t, q.cursor == "" || boxoffice.ValidID(q.cursor), "cursor %q", q.cursor)
			for _, s := range []string{q.q, q.typ, q.location} {
				require.LessOrEqual(t, len(s), boxoffice.NameLenMax)
				require.Equal(t, strings.ToLower(s), s)
			}
		}

		sf, err := parseSeatFilter(ctx)
		if err != nil {
			requireBadInput(t, err)
		} else if sf.State != nil {
			require.Contains(t, []boxoffice.SeatState{boxoffice.SeatFree, boxoffice.SeatHeld, boxoffice.SeatSold}, *sf.State)
		}

		if _, err := strongRead(ctx); err != nil {
			requireBadInput(t, err)
		}

		shard, all, err := parseShardParam(ctx, fuzzShards)
		switch {
		case err != nil:
			requireBadInput(t, err)
		case all:
			require.Zero(t, shard)
		default:
			require.True(t, shard >= 0 && shard < fuzzShards, "shard %d", shard)
		}
	})
}

// FuzzAuthorization fuzzes the Authorization header: a rejection is 401
// unauthorized; an accepted header carries a token that verifies under the
// server's secret (HS256, not expired) with a valid subject and a known
// role, and the principal is the token's; asking again (from the token
// cache) gives the same answer.
func FuzzAuthorization(f *testing.F) {
	secret := []byte("fuzz-secret-0123456789abcdef")
	mint := func(key any, method jwt.SigningMethod, c jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, c).SignedString(key)
		require.NoError(f, err)
		return tok
	}
	later, earlier := time.Now().Add(24*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	for _, h := range []string{
		"", "Bearer", "Bearer ", "bearer x", "Basic dTE6cHc=", "Bearer not.a.token", "Bearer a.b.c.d",
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "buyer", "exp": later}),
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "admin", "role": "admin", "exp": later, "iat": earlier}),
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "buyer", "exp": earlier}),
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "buyer"}),
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u 1", "role": "buyer", "exp": later}),
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "root", "exp": later}),
		"Bearer " + mint(secret, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "buyer", "exp": later, "nbf": later}),
		"Bearer " + mint(secret, jwt.SigningMethodHS512, jwt.MapClaims{"sub": "u1", "role": "buyer", "exp": later}),
		"Bearer " + mint([]byte("another-secret-0123456789"), jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1", "role": "buyer", "exp": later}),
		"Bearer " + mint(jwt.UnsafeAllowNoneSignatureType, jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1", "role": "admin", "exp": later}),
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		s := &Server{cfg: Config{AuthSecret: secret}}
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.Header.Set(fasthttp.HeaderAuthorization, header)
		p, err := s.authenticate(ctx)
		if err != nil {
			var e *boxoffice.Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.Equal(t, boxoffice.CodeUnauthorized, e.Code)
			require.Equal(t, 401, StatusOf(e.Code))
			return
		}
		require.True(t, boxoffice.ValidID(p.Subject), "subject %q", p.Subject)
		require.Contains(t, []Role{RoleBuyer, RoleOrganiser, RoleAdmin}, p.Role)
		raw := string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))[len("Bearer "):]
		var c claims
		_, err = jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		require.NoError(t, err, "accepted a token that does not verify")
		require.Equal(t, Principal{Subject: c.Subject, Role: c.Role}, p)
		again, err := s.authenticate(ctx)
		require.NoError(t, err)
		require.Equal(t, p, again)
	})
}

// FuzzGrantBody fuzzes the body of PUT /v1/events/{event}/access/{user}: a
// body is refused with invalid_argument, or it gives exactly view or manage
// and reads the same once encoded again.
func FuzzGrantBody(f *testing.F) {
	for _, s := range append([]string{``, `{"level":"view"}`, `{"level":"manage"}`, `{"level":"owner"}`, `{"level":"none"}`,
		`{"level":"VIEW"}`, `{"level":""}`, `{"level":1}`, `{"level":"view","level":"manage"}`, `{"level":"view","user":"u2"}`,
		`{"level":null}`, `{}`, `{"level":"view"} {}`}, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		level, err := readGrantRequest(bodyCtx(body))
		if err != nil {
			requireBadInput(t, err)
			return
		}
		require.Contains(t, []boxoffice.AccessLevel{boxoffice.AccessView, boxoffice.AccessManage}, level)
		again, err := readGrantRequest(bodyCtx(reencode(t, map[string]string{"level": level.String()})))
		require.NoError(t, err)
		require.Equal(t, level, again)
	})
}

// FuzzProtectBody fuzzes the body of PUT /v1/events/{event}/queue: a
// config it accepts is in range, and reads back the same from its own
// encoding.
func FuzzProtectBody(f *testing.F) {
	for _, s := range append([]string{
		`{"opensAt":"2026-12-01T10:00:00Z"}`,
		`{"opensAt":"2026-12-01T10:00:00.123+01:00","passTTLSeconds":600,"admitPercent":100}`,
		`{"opensAt":"2026-12-01T10:00:00Z","passTTLSeconds":0}`,
		`{"opensAt":"2026-12-01T10:00:00Z","passTTLSeconds":3601}`,
		`{"opensAt":"2026-12-01T10:00:00Z","admitPercent":1001}`,
		`{"opensAt":"1969-12-31T23:59:59Z"}`,
		`{"opensAt":"soon"}`,
		`{"opensAt":""}`,
		`{"passTTLSeconds":60}`,
		`{"opensAt":"2026-12-01T10:00:00Z","admitPercent":1.5}`,
		`{"opensAt":"9999-12-31T23:59:59Z"}`,
	}, jsonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cfg, err := readProtectRequest(bodyCtx(body))
		if err != nil {
			requireBadInput(t, err)
			return
		}
		require.NoError(t, cfg.Validate())
		again, err := readProtectRequest(bodyCtx(reencode(t, protectRequest{
			OpensAt:        time.UnixMilli(cfg.OpensAtMs).UTC().Format(time.RFC3339Nano),
			PassTTLSeconds: &cfg.PassTTLSeconds, AdmitPercent: &cfg.AdmitPercent,
		})))
		require.NoError(t, err)
		require.Equal(t, cfg, again)
	})
}

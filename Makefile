# The two commands a new user types: `make run` and `make test`.
# Both install what they need (Go modules; staticcheck and stripe-mock through the Go module proxy).

GO        ?= go
BIN       := bin/boxoffice
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
# stripe-mock: Stripe's API mock, started by the payment tests (payment/stripe_test.go).
STRIPE_MOCK_VERSION := v0.203.0

.PHONY: run test build deps lint unit stripe-mock bench fuzz clean

## run: build and start a local 3-node cluster with a 100,000-seat demo event (Ctrl-C stops it)
run: build
	./$(BIN) local --data-dir data

build: deps
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/boxoffice

deps:
	$(GO) mod download

## test: vet, staticcheck, and every test with the race detector
test: deps lint unit

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

unit: stripe-mock
	$(GO) test -race -count=1 -timeout 20m ./...

stripe-mock:
	@test -x $(GOBIN)/stripe-mock || $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

## bench: the Go benchmarks of the hot paths (figures, not pass/fail)
bench:
	$(GO) test -run XXX -bench . -benchmem ./fsm ./raftnode

## fuzz: run every fuzz target for FUZZTIME each (default 30s), one after another
# `make test` runs only their seeds and committed corpora. The targets are
# found by name (func Fuzz... in *_test.go). A crash is written under the
# package's testdata/fuzz/<Target>/: commit it with the fix, and every
# `go test` runs it from then on.
FUZZTIME ?= 30s

fuzz: deps
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for name in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$dir $$name ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s -parallel 1 $$dir; \
		done; \
	done

clean:
	rm -rf bin data

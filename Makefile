# The two commands a new user types: `make run` and `make test`.
# Both install what they need (Go modules; staticcheck and stripe-mock through the Go module proxy).

GO        ?= go
BIN       := bin/boxoffice
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
# stripe-mock: Stripe's API mock, started by the payment tests (payment/stripe_test.go).
STRIPE_MOCK_VERSION := v0.203.0
# etcd: the bench's peer (bench/etcd.go), built from its Go module at the version
# pinned in tools/etcd/go.mod (its main package is go.etcd.io/etcd/server/v3).
ETCD_VERSION := 3.7.3
BENCH_OUT := bench-results

# The container image (make image) and the chaos suite (make chaos, make soak).
IMAGE_DIR := build/image
# DURATION: how long `make soak` runs the on-sale under faults.
DURATION  ?= 10m
# CHAOS_DURATION: the short round of `make chaos` (part of `make test`).
CHAOS_DURATION ?= 150s
COMPOSE   := docker-compose -p boxoffice

.PHONY: run test build deps lint unit stripe-mock chromium peers etcd postgres bench bench-compare bench-go fuzz clean image chaos soak compose-up compose-down

## run: build and start a local 3-node cluster with a 100,000-seat demo event (Ctrl-C stops it)
run: build
	./$(BIN) local --data-dir data

build: deps
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/boxoffice

deps:
	$(GO) mod download

## test: vet, staticcheck, every test with the race detector (the bench's peer
## tests need etcd and PostgreSQL, the web page's tests Chromium: installed
## first), and the short chaos round
test: deps peers lint unit chaos

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

unit: stripe-mock chromium
	$(GO) test -race -count=1 -timeout 20m ./...

# chromium: Debian's package, which the web page's tests drive headless
# (httpapi/web_test.go, through chromedp).
chromium:
	@test -x /usr/bin/chromium || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

stripe-mock:
	@test -x $(GOBIN)/stripe-mock || $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

## peers: what the bench's peers need, etcd and PostgreSQL
peers: etcd postgres

# etcd's go.mod has replace directives, so `go install ...@version` refuses it:
# tools/etcd is a module of its own that requires it, and builds its main there.
etcd:
	@$(GOBIN)/etcd --version 2>/dev/null | grep -q "etcd Version: $(ETCD_VERSION)" || \
		(echo "building etcd $(ETCD_VERSION) into $(GOBIN)/etcd ..." && cd tools/etcd && $(GO) build -o $(GOBIN)/etcd go.etcd.io/etcd/server/v3)

# Debian's package puts initdb and postgres in /usr/lib/postgresql/<major>/bin.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)

## bench: the on-sale against a local 3-node cluster: 100,000 seats, 256 users (report in bench-results/)
bench: build
	@mkdir -p $(BENCH_OUT)
	./$(BIN) bench --seats 100000 --users 256 --json $(BENCH_OUT)/bench.json --html $(BENCH_OUT)/bench.html

## bench-compare: the same on-sale against boxoffice, etcd (3 members) and PostgreSQL, one table with the ratios
bench-compare: build peers
	@mkdir -p $(BENCH_OUT)
	./$(BIN) bench --compare --seats 100000 --users 256 --json $(BENCH_OUT)/compare.json --html $(BENCH_OUT)/compare.html

## bench-go: the Go benchmarks of the hot paths (figures, not pass/fail)
bench-go:
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


## image: the FROM scratch image of the static binary; its tag (boxoffice:<content hash>, so
## that builds of other branches sharing the Docker daemon never replace it) goes to build/image/tag
image: build
	@mkdir -p $(IMAGE_DIR)
	@cp $(BIN) $(IMAGE_DIR)/boxoffice
	@cp /etc/ssl/certs/ca-certificates.crt $(IMAGE_DIR)/ 2>/dev/null || : > $(IMAGE_DIR)/ca-certificates.crt
	@tag=boxoffice:$$(cat $(IMAGE_DIR)/boxoffice $(IMAGE_DIR)/ca-certificates.crt Dockerfile | sha256sum | cut -c1-12); \
	  docker image inspect $$tag >/dev/null 2>&1 || \
	  DOCKER_BUILDKIT=0 docker build -q -t $$tag -f Dockerfile $(IMAGE_DIR) >/dev/null 2>&1 || \
	  DOCKER_BUILDKIT=0 docker build -t $$tag -f Dockerfile $(IMAGE_DIR); \
	  docker image inspect $$tag >/dev/null && echo $$tag > $(IMAGE_DIR)/tag && echo "image $$tag"

## chaos: the short chaos round (3 nodes in Docker, the on-sale, one fault of each kind; ≤ 5 minutes)
chaos: image
	./$(BIN) chaos --image $$(cat $(IMAGE_DIR)/tag) --duration $(CHAOS_DURATION) --json $(IMAGE_DIR)/chaos.json --logs $(IMAGE_DIR)/chaos-logs

## soak: the long chaos run, against the issue's targets (make soak DURATION=10m)
soak: image
	./$(BIN) chaos --image $$(cat $(IMAGE_DIR)/tag) --duration $(DURATION) --round 120s --quiet 10s \
	  --min-availability 0.999 --max-failover-p99 1.5s --json $(IMAGE_DIR)/soak.json --logs $(IMAGE_DIR)/soak-logs

## compose-up: a 3-node cluster in containers on 127.0.0.1:8081-8083 with a demo event (secret in build/compose-secret)
compose-up: image build
	@test -s build/compose-secret || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > build/compose-secret
	BOXOFFICE_IMAGE=$$(cat $(IMAGE_DIR)/tag) BOXOFFICE_AUTH_SECRET=$$(cat build/compose-secret) $(COMPOSE) up -d gateway n1 n2 n3
	@for i in $$(seq 1 60); do curl -sf http://127.0.0.1:8081/readyz >/dev/null && break; sleep 1; done
	./$(BIN) demo --target http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 --auth-secret $$(cat build/compose-secret)
	@echo "nodes: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083"
	@echo "admin token: BOXOFFICE_AUTH_SECRET=\$$(cat build/compose-secret) ./$(BIN) token --subject admin --role admin"

## compose-down: stop the compose cluster and delete its volumes
compose-down:
	BOXOFFICE_AUTH_SECRET=unused-at-teardown $(COMPOSE) --profile spare down -v

clean:
	rm -rf bin data build artifacts $(BENCH_OUT)

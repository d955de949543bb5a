# The two commands a newcomer needs are `make run` and `make test` (README.md).
GO ?= go
STATICCHECK_VERSION := v0.8.2

.PHONY: run test test-ha bench lint vuln build fuzz

## run: the service on a local database, with a first admin printed once
run:
	@DATABASE_URL="$$(GO=$(GO) deploy/dev/devdb.sh authd)" && export DATABASE_URL && \
	  $(GO) run ./cmd/authd serve --bootstrap-admin

## test: every test, integration tests included, each in its own database
test:
	@AUTHD_TEST_DATABASE_URL="$${AUTHD_TEST_DATABASE_URL:-$$(DATABASE_URL= GO=$(GO) deploy/dev/devdb.sh postgres)}" && \
	  export AUTHD_TEST_DATABASE_URL && \
	  $(GO) test -race -count=1 ./...

## test-ha: authd on PostgreSQL's HA engines (test/ha/run.sh): a named subset of the
## integration suite through a real PgBouncer in transaction mode, then internal/ha
## (AUTHD_TEST_HA=1): the feed on a paused streaming replica and a Patroni failover
## under load. Local processes on 127.0.0.1 only; installs pgbouncer, patroni and
## etcd-server when missing and run as root.
test-ha:
	@AUTHD_TEST_DATABASE_URL="$${AUTHD_TEST_DATABASE_URL:-$$(DATABASE_URL= GO=$(GO) deploy/dev/devdb.sh postgres)}" && \
	  export AUTHD_TEST_DATABASE_URL && GO=$(GO) test/ha/run.sh

## fuzz: every native fuzz target for FUZZTIME each (CI runs them briefly)
FUZZTIME ?= 20s
FUZZ_TARGETS := ./internal/httpapi/:FuzzReadJSON ./internal/httpapi/:FuzzReadTokenParams \
	./internal/httpapi/:FuzzBearerToken ./internal/httpapi/:FuzzSinceFromQuery ./internal/feed/:FuzzParseSince \
	./verifier/:FuzzVerify ./verifier/:FuzzCheckMembers
# A target fails only when it wrote a failing input to testdata/fuzz/: Go's
# fuzz coordinator can report "context deadline exceeded" at the end of a
# timed run with no failing input under CPU load (golang/go#75804, fixed in
# Go 1.27); that is reported and skipped.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz: $$name ($$pkg, $(FUZZTIME))"; \
	  corpus="$$pkg/testdata/fuzz/$$name"; before="$$(ls "$$corpus" 2>/dev/null | sort)"; \
	  if ! $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; then \
	    if [ "$$(ls "$$corpus" 2>/dev/null | sort)" != "$$before" ]; then echo "fuzz: $$name wrote a failing input to $$corpus"; exit 1; fi; \
	    echo "fuzz: $$name stopped with no failing input written (golang/go#75804); not a finding"; \
	  fi; \
	done

## bench: the benchmarks quoted in README's Performance section
bench:
	@AUTHD_TEST_DATABASE_URL="$${AUTHD_TEST_DATABASE_URL:-$$(DATABASE_URL= GO=$(GO) deploy/dev/devdb.sh postgres)}" && \
	  export AUTHD_TEST_DATABASE_URL && \
	  $(GO) test -run '^$$' -bench . -benchmem ./...

## bench-load: cmd/authbench's standard set, against a private authd it starts on a fresh
## database (AUTHD_TEST_DATABASE_URL or the local PostgreSQL), each figure against its floor
.PHONY: bench-load
BENCH_LOAD_FLAGS ?=
bench-load:
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	  $(GO) build -o "$$tmp/authd" ./cmd/authd && $(GO) build -o "$$tmp/authbench" ./cmd/authbench && \
	  "$$tmp/authbench" -start-authd "$$tmp/authd" $(BENCH_LOAD_FLAGS)

# VERSION and REVISION, when set, name the build in `authd version` and the
# authd_build_info metric; otherwise go build's VCS stamp does (none without .git).
VERSION ?=
REVISION ?=
BUILDINFO := github.com/seedc5a8123e/authd/internal/buildinfo
LDFLAGS := -s -w
ifneq ($(VERSION),)
LDFLAGS += -X $(BUILDINFO).Version=$(VERSION)
endif
ifneq ($(REVISION),)
LDFLAGS += -X $(BUILDINFO).Revision=$(REVISION)
endif

## build: a static binary in bin/authd (deploy/Dockerfile runs this target)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='$(LDFLAGS)' -o bin/authd ./cmd/authd

## lint: go vet and a pinned staticcheck (fetched through the module proxy)
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## vuln: known vulnerabilities in the dependencies (needs the vulnerability database online)
vuln:
	$(GO) run golang.org/x/vuln/cmd/govulncheck@latest ./...

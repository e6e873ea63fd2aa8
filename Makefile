# Prism build. `make run` starts Prism; `make test` runs every test.
GO ?= go
PROTOC_GEN_GO_VERSION := v1.36.12
STATICCHECK_VERSION := v0.8.2
NATS_LISTEN ?= 127.0.0.1:4222
DATA_DIR ?= ./prism-data
# ARGS are more `prism serve` flags for make run, e.g.
#   make run ARGS="--sync-always --http-listen 127.0.0.1:9090"
ARGS ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
CONCURRENT_PKGS := ./auth/... ./gateway/... ./projectors/... ./client/... ./backends/... ./subjects/... ./pii/... ./replay/... ./namespaces/... ./node/... ./cmd/...
# Packages of the standalone-NATS tests (TestStandalone*), see docs/testing.md.
STANDALONE_PKGS := ./itest/ ./backends/natskv/
# Reads go test -json: prints it as go test does, lists the skips and fails
# on one not allowed (.ci/skipcheck/main.go).
SKIPCHECK := $(GO) run ./.ci/skipcheck
FUZZTIME ?= 10s

.PHONY: run test race generate generate-check lint bench build tools nats-server test-standalone fuzz up down down-volumes

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/prism ./cmd/prism

run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/prism serve --data-dir $(DATA_DIR) --nats-listen $(NATS_LISTEN) $(ARGS)

# With ALLOWED_SKIPS=FILE (CI: .ci/allowed-skips.txt) a skipped test that
# FILE does not list fails the run.
test:
ifeq ($(ALLOWED_SKIPS),)
	$(GO) test -count=1 ./...
else
	$(GO) test -count=1 -json ./... | $(SKIPCHECK) -allow $(ALLOWED_SKIPS)
endif

# The current nats-server of go.mod, for the standalone-NATS tests.
nats-server:
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2

# The standalone-NATS tests against bin/nats-server run as its own process
# (.ci/with-nats-server starts and stops it); a skip fails them.
test-standalone: nats-server
	.ci/with-nats-server $(GO) test -count=1 -json -run '^TestStandalone' $(STANDALONE_PKGS) | $(SKIPCHECK) -want-tests

# Every fuzz target of the module, FUZZTIME each.
fuzz:
	.ci/fuzz $(FUZZTIME)

# A pipe fails when go test fails, not only when its reader does.
test test-standalone: SHELL := bash
test test-standalone: .SHELLFLAGS := -o pipefail -c

race:
	$(GO) test -count=1 -race $(CONCURRENT_PKGS)

tools:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Needs protoc (Debian: apt-get install protobuf-compiler) and `make tools`.
# protoc-gen-prism (cmd/protoc-gen-prism) is built from this tree and run
# on examples/: the typed clients and namespace specs of the examples.
generate:
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I proto --go_out=proto --go_opt=paths=source_relative proto/prism/options.proto proto/prism/v1/*.proto
	$(GO) build -o bin/protoc-gen-prism ./cmd/protoc-gen-prism
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I proto -I examples --plugin=protoc-gen-prism=bin/protoc-gen-prism \
		--go_out=examples --go_opt=paths=source_relative --prism_out=examples --prism_opt=paths=source_relative examples/userprofile/*.proto

# Fails when the committed generated code differs from what generate makes.
generate-check: generate
	git diff --exit-code -- proto/ examples/ || (echo "generated code is stale: run make generate and commit" >&2; exit 1)
	test -z "$$(git status --porcelain -- proto/ examples/)" || (git status --porcelain -- proto/ examples/ >&2; echo "make generate made files that are not committed" >&2; exit 1)

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . >&2; exit 1)
	$(GO) vet ./...
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./itest/... ./projectors/... ./gateway/... ./backends/...

# The docker-compose.yml stack (docs/compose.md). deploy/.env holds the
# stack's PostgreSQL password, made at the first make up and never
# committed.
COMPOSE ?= docker compose --env-file deploy/.env
deploy/.env:
	umask 077 && printf 'POSTGRES_PASSWORD=%s\n' "$$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" > $@

up: deploy/.env
	$(COMPOSE) up -d --build --wait

down: deploy/.env
	$(COMPOSE) down

down-volumes: deploy/.env
	$(COMPOSE) down --volumes

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
CONCURRENT_PKGS := ./gateway/... ./projectors/... ./client/... ./backends/... ./subjects/... ./replay/... ./cmd/...

.PHONY: run test race generate generate-check lint bench build tools

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/prism ./cmd/prism

run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/prism serve --data-dir $(DATA_DIR) --nats-listen $(NATS_LISTEN) $(ARGS)

test:
	$(GO) test -count=1 ./...

race:
	$(GO) test -count=1 -race $(CONCURRENT_PKGS)

tools:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Needs protoc (Debian: apt-get install protobuf-compiler) and `make tools`.
generate:
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I proto --go_out=proto --go_opt=paths=source_relative proto/prism/v1/*.proto

# Fails when the committed generated code differs from what generate makes.
generate-check: generate
	git diff --exit-code -- proto/ || (echo "generated code is stale: run make generate and commit" >&2; exit 1)

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . >&2; exit 1)
	$(GO) vet ./...
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./itest/... ./projectors/... ./gateway/... ./backends/...

# The two commands a fresh machine needs: `make run` (the example system) and
# `make test` (every test, with the race detector). Everything else is optional.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 1s
# The repository is a workspace (go.work) of modules: the core at the root,
# and a module for each part with heavy dependencies, so that a program using
# only the core does not get them. ./... stops at a module's boundary, so
# PKGS names every module's tree.
MODULES     := $(shell $(GO) list -m -f '{{.Dir}}' | sed 's|^$(CURDIR)|.|')
PKGS        ?= $(addsuffix /...,$(MODULES))

.PHONY: FORCE ssl pg-hint all test test-short bench fuzz lint fmt vet tidy run emulator proto build clean

all: lint test

## test: go vet, then every test with the race detector.
test: vet pg-hint
	$(GO) test -race -count=1 $(PKGS)

# go test hides a passing package's skip messages, so say once, up front, why the
# PostgreSQL tests will skip (in CI they fail instead: .ci/run starts PostgreSQL).
pg-hint:
	@bash -c 'h=$${POSTGRES_HOST:-127.0.0.1} p=$${POSTGRES_PORT:-5432}; (exec 3<>/dev/tcp/$$h/$$p) 2>/dev/null || \
		echo "PostgreSQL not reachable at $$h:$$p: its tests skip. To run them: eval \"\$$(bash .ci/postgres.sh)\""'

## test-short: the tests without -race, for a quick loop.
test-short:
	$(GO) test -count=1 $(PKGS)

## vet: go vet on every package.
vet:
	$(GO) vet $(PKGS)

## tidy: go mod tidy in every module, each on its own (GOWORK=off), as a
## user's build sees it.
tidy:
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && GOWORK=off $(GO) mod tidy); done

## lint: gofmt, go vet and staticcheck must all be clean.
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: every fuzz target for FUZZTIME each, one after the other (go test
## runs one target per package at a time). Seeds live in testdata/fuzz/.
FUZZTIME    ?= 30s
FUZZTARGETS ?= \
	.:FuzzMapperToEvent .:FuzzMapperTampered ./internal/codec:FuzzCodecRoundTrip ./internal/codec:FuzzCodecDecode \
	./grpcapp:FuzzDecodeArgs \
	./esdb/esdbtest:FuzzAppendFrameDecode ./esdb/esdbtest:FuzzAppendFrameMatchesProto ./esdb/esdbtest:FuzzFilter \
	./esdb:FuzzParseConfig ./recorder/sqlite:FuzzParseConfig ./recorder/postgres:FuzzParseConfig \
	./config:FuzzEnv ./recorder:FuzzMatchTopic
fuzz:
	@set -e; for t in $(FUZZTARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## bench: every backend and the gRPC layer, beside the raw substrate (events/s).
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem $(PKGS)

## bench-report: every workload of docs/benchmarks.md beside its substrate,
## ROUNDS interleaved rounds of BENCHTIME each, written into the document's
## report section, raw output in docs/bench/raw.txt (benchstat reads it).
## PostgreSQL rows need a server first: eval "$(bash .ci/postgres.sh)".
## BENCH_ROWS=regexp runs only the matching rows and prints their table instead.
ROUNDS     ?= 6
BENCH_ROWS ?=
.PHONY: bench-report
bench-report:
	$(GO) run ./internal/cmd/benchreport -rounds $(ROUNDS) -benchtime $(BENCHTIME) -doc docs/benchmarks.md -raw docs/bench/raw.txt $(if $(BENCH_ROWS),-rows '$(BENCH_ROWS)')

## run: the example system (Orders, Reservations, Payments, OrdersSummary) as
## gRPC servers, by the example's command (example/cmd/eventsourcing-grpc).
# The binary is built first rather than `go run`, so Ctrl-C ends make cleanly.
run: bin/eventsourcing-grpc
	./bin/eventsourcing-grpc runner orders.System

bin/eventsourcing-grpc: FORCE
	$(GO) build -o $@ ./example/cmd/eventsourcing-grpc

## ssl: certificates with subjectAltNames for the mutual-TLS deployments.
ssl: bin/eventsourcing-grpc
	./bin/eventsourcing-grpc ssl -dir ssl

FORCE:

## emulator: the EventStoreDB-compatible test server on 127.0.0.1:2113
## (EMULATOR_PORT=2114 make emulator for another port).
EMULATOR_PORT ?= 2113
emulator:
	$(GO) run ./cmd/esdb-emulator -addr 127.0.0.1:$(EMULATOR_PORT)

## proto: regenerate the committed protobuf code of grpcapp.
proto:
	$(MAKE) -C grpcapp proto

build:
	$(GO) build $(PKGS)

## arch: redraw the package diagram of docs/architecture.md from the
## imports of every module's packages (its test fails when it is stale).
.PHONY: arch
arch:
	$(GO) run ./internal/cmd/archdiagram -doc docs/architecture.md

clean:
	$(GO) clean -testcache

## images: the eventsourcing-grpc and esdb-emulator images, FROM scratch, from
## static binaries built here (no registry needed; see README, Docker).
# The binaries are built for the engine's architecture; each image's context
# is its own directory under bin/images/, so only what it copies is sent.
IMAGE_TAG ?= latest
IMAGES    := bin/images
.PHONY: images
images:
	@arch=$$(docker version -f '{{.Server.Arch}}') || { echo "images: no Docker engine answers"; exit 1; }; \
	set -e; rm -rf $(IMAGES); \
	for pkg in ./cmd/esdb-emulator ./example/cmd/eventsourcing-grpc; do \
		cmd=$${pkg##*/}; mkdir -p $(IMAGES)/$$cmd/data $(IMAGES)/$$cmd/tmp; \
		echo "CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGES)/$$cmd/ $$pkg"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGES)/$$cmd/ $$pkg; \
	done; \
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt $(IMAGES)/eventsourcing-grpc/; \
	else echo "images: no /etc/ssl/certs/ca-certificates.crt here; eventsourcing-grpc gets no CA bundle"; : > $(IMAGES)/eventsourcing-grpc/ca-certificates.crt; fi; \
	for cmd in esdb-emulator eventsourcing-grpc; do \
		docker build -q -f docker/$$cmd.Dockerfile -t $$cmd:$(IMAGE_TAG) $(IMAGES)/$$cmd; \
	done; \
	docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(esdb-emulator|eventsourcing-grpc):$(IMAGE_TAG) '

## e2e: the orders system in docker-compose on EventStoreDB (the emulator),
## with mutual TLS, under container faults (docker/e2e.sh; needs a Docker engine).
.PHONY: e2e
e2e:
	bash docker/e2e.sh

# dockward build, test and lint entry points. `make test` is the test
# command the README and .ci/run use. Add targets below; keep each one
# runnable on its own from a fresh clone.

GO        ?= go
BIN       ?= bin/dockward
PKG       := github.com/dockward/dockward
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILDDATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
VERSIONPKG := github.com/prometheus/common/version
LDFLAGS   := -s -w \
	-X $(VERSIONPKG).Version=$(VERSION) \
	-X $(VERSIONPKG).Revision=$(REVISION) \
	-X $(VERSIONPKG).Branch=$(BRANCH) \
	-X $(VERSIONPKG).BuildUser=$(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown) \
	-X $(VERSIONPKG).BuildDate=$(BUILDDATE)

# Arguments for `make run`, e.g. make run ARGS='--log.format=console'.
ARGS      ?=
# Per-target fuzz budget for `make fuzz`: a count of executions (Nx) rather
# than a duration, because Go before 1.27 can fail a target with "context
# deadline exceeded" when a duration runs out while a worker is mid-call
# (go.dev/issue/75804). 50000x takes the slowest target (FuzzDecodeConfig)
# about 20 s and all of them about 90 s on two cores; FUZZTIME=30s still
# works for a longer run.
FUZZTIME  ?= 50000x
# Benchmark time for `make bench`.
BENCHTIME ?= 1s
# Test timeout: CI runs every package in one go.
TESTTIMEOUT ?= 15m

.PHONY: all build run test bench fuzz lint fmt vet staticcheck clean image e2e

all: build

## build: static bin/dockward with version, revision, branch and build date.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/agent

## run: build and run the agent with its built-in defaults (as root for audit).
run: build
	./$(BIN) $(ARGS)

## test: the whole test suite (needs Docker and root for the full run; CI=true turns skips into failures).
test:
	$(GO) test -count=1 -timeout $(TESTTIMEOUT) ./...
	cd deploy && $(GO) test -count=1 -timeout $(TESTTIMEOUT) ./...

## bench: every benchmark, no tests.
## One package at a time (-p 1): benchmarks that time the kernel or a child
## process must not share the cores with another package's benchmarks.
bench:
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## fuzz: a short run of each fuzz target (seed corpora live in testdata/fuzz).
## Add one line per target: $(GO) test -run '^$$' -fuzz '^FuzzName$$' -fuzztime $(FUZZTIME) ./pkg/x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeConfig$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./cmd/agent
	$(GO) test -run '^$$' -fuzz '^FuzzJudge$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./pkg/containers
	$(GO) test -run '^$$' -fuzz '^FuzzEventLabels$$' -fuzztime $(FUZZTIME) ./pkg/containers
	$(GO) test -run '^$$' -fuzz '^FuzzImageHistory$$' -fuzztime $(FUZZTIME) ./pkg/containers
	$(GO) test -run '^$$' -fuzz '^FuzzParseMountinfo$$' -fuzztime $(FUZZTIME) ./pkg/hostfs
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pkg/watcher/daemonjson
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pkg/dockerinfo
	$(GO) test -run '^$$' -fuzz '^FuzzFindingsPageQuery$$' -fuzztime $(FUZZTIME) ./internal/findingspage
	$(GO) test -run '^$$' -fuzz '^FuzzParseLine$$' -fuzztime $(FUZZTIME) ./pkg/auditd/record
	$(GO) test -run '^$$' -fuzz '^FuzzEventAccess$$' -fuzztime $(FUZZTIME) ./pkg/auditd/record
	$(GO) test -run '^$$' -fuzz '^FuzzReassembly$$' -fuzztime $(FUZZTIME) ./pkg/auditd/reassembly
	$(GO) test -run '^$$' -fuzz '^FuzzPipeline$$' -fuzztime $(FUZZTIME) ./pkg/auditd
	$(GO) test -run '^$$' -fuzz '^FuzzParseNames$$' -fuzztime $(FUZZTIME) ./pkg/hostfs
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./pkg/images/osv

## lint: gofmt, go vet and staticcheck (when it installs).
lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...

# staticcheck installs from the module proxy; if it cannot be built with this
# Go release the target says so and does not fail the lint.
staticcheck:
	@if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$$($(GO) env GOPATH)/bin/staticcheck" ]; then \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@latest || \
		{ echo "staticcheck did not install with $$($(GO) version); skipping it"; exit 0; }; \
	fi; \
	SC=$$(command -v staticcheck || echo "$$($(GO) env GOPATH)/bin/staticcheck"); \
	$$SC ./... && if [ -f deploy/go.mod ]; then cd deploy && $$SC ./...; fi

## image: the container image FROM scratch with bin/dockward (nothing is pulled).
IMAGE     ?= dockward/dockward
IMAGE_TAG ?= $(VERSION)
image: build
	docker build --network none -t $(IMAGE):$(IMAGE_TAG) -t $(IMAGE):latest .

## e2e: the deploy artifacts against real components (image, Prometheus, Alertmanager).
e2e:
	cd deploy && $(GO) test -count=1 -timeout $(TESTTIMEOUT) -v ./e2e/...

clean:
	rm -rf bin dist

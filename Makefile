# Blossom's one entry point for building, testing and running.
# `make demo` and `make test` are the README's quick start.

SHELL       := /bin/bash
GO          ?= go
BIN         := $(CURDIR)/bin
PKG         := github.com/blossom-dso/blossom
# Tools are pinned and installed into ./bin from the Go module proxy.
FAILPOINT   := github.com/pingcap/failpoint/failpoint-toolexec@v0.0.0-20240528011301-b51a646c7c86
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_FLAGS  ?= -timeout 20m
FUZZTIME    ?= 30s
ARGS        ?=

.PHONY: all build test test-unit test-sabotage test-race lint demo sim-demo bench-dso sim sim-sabotage explore-campaign fuzz figures tools clean

all: build

build:
	$(GO) build -o $(BIN)/blossom ./cmd/blossom

## test: the sabotage tests, which need the failpoint markers rewritten at
## compile time, then every unit, simulation-sweep and fuzz-seed test, then
## the DSO library's, server's and client's tests under the race detector
## (connections read by goroutines taking turns, objects shared by calls).
test: test-sabotage test-unit test-race

# The last line counts the packages: "packages: N passed, M failed".
test-unit:
	@mkdir -p $(BIN)
	@set -o pipefail; $(GO) test $(TEST_FLAGS) ./... 2>&1 | tee $(BIN)/test.log; status=$$?; \
	echo "packages: $$(grep -c '^ok' $(BIN)/test.log) passed, $$(grep -c '^FAIL' $(BIN)/test.log) failed"; \
	exit $$status

# The race detector needs cgo, hence a C compiler.
RACE_PKGS := ./dso/ ./dso/client/ ./dso/server/ ./dso/replicated/ ./dso/ring/ ./dso/wire/ ./internal/sockio/
test-race:
	command -v gcc >/dev/null 2>&1 || { apt-get update && apt-get install -y gcc; }
	CGO_ENABLED=1 $(GO) test $(TEST_FLAGS) -race $(RACE_PKGS)

# The sabotage tests carry the `failpoint` build tag: they only make sense in
# a build whose failpoint markers were rewritten by failpoint-toolexec. In
# every other build the markers are inert no-ops. The rewritten build keeps
# its own cache: the go command does not tell it apart from a plain build.
# failpoint-toolexec writes each rewritten package into one folder under
# TMPDIR, so two compiles of one package (plain and test variant) must not
# run at once: -p 1, and a TMPDIR of this checkout's own.
FP_ENV := GOCACHE=$(CURDIR)/.cache/failpoint TMPDIR=$(CURDIR)/.cache/tmp GOMODCACHE="$$($(GO) env GOMODCACHE)"
FP_FLAGS := -p 1 -toolexec=$(BIN)/failpoint-toolexec

test-sabotage: $(BIN)/failpoint-toolexec
	@mkdir -p $(CURDIR)/.cache/tmp
	$(FP_ENV) $(GO) test $(TEST_FLAGS) -tags failpoint $(FP_FLAGS) -run '^TestSabotage' -v ./protocols/... ./runner/... ./simnet/explore/

$(BIN)/failpoint-toolexec:
	GOBIN=$(BIN) $(GO) install $(FAILPOINT)

$(BIN)/staticcheck:
	GOBIN=$(BIN) $(GO) install $(STATICCHECK)

tools: $(BIN)/failpoint-toolexec $(BIN)/staticcheck

lint: $(BIN)/staticcheck
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	GOOS=windows $(GO) build ./...
	GOOS=darwin $(GO) build ./...
	GOOS=freebsd $(GO) build ./...

## demo: a 3-node DSO cluster in one process running the Monte Carlo pi job
## of the deliverable as cloud threads: executor invocations in worker
## processes of the same binary, sharing an AtomicLong and a barrier.
demo:
	$(GO) run ./examples/montecarlo -executor process

## sim-demo: a planet-scale simulation of Flexible Paxos, checked.
sim-demo:
	$(GO) run ./cmd/blossom sim --protocol fpaxos --nodes 5 --f 1 --latency planet:gcp \
		--clients 50 --ops 5000 --conflict 10 --faults none --seed 1 --check

## bench-dso: Blossom against Redis on loopback (installs Debian's redis-server
## if missing); ARGS=--quick for a short run.
bench-dso: build
	command -v redis-server >/dev/null 2>&1 || { apt-get update && apt-get install -y redis-server; }
	$(BIN)/blossom bench-dso $(ARGS)

## etcd: install Debian's etcd-server (the etcd binary) if missing, for
## blossom bench-etcd only (make test does not need it), e.g.
## make etcd build && bin/blossom bench-etcd --quick
.PHONY: etcd
etcd:
	command -v etcd >/dev/null 2>&1 || { apt-get update && apt-get install -y etcd-server; }

## lambda-zip: the blossom binary as an AWS Lambda function for the
## provided.al2023 runtime (x86_64): bin/lambda/function.zip holding
## bootstrap (see the executor package doc to deploy it). PKG_MAIN=./examples/montecarlo
## packs an example instead.
.PHONY: lambda-zip
PKG_MAIN ?= ./cmd/blossom
lambda-zip:
	@mkdir -p $(BIN)/lambda
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -o $(BIN)/lambda/bootstrap $(PKG_MAIN)
	command -v zip >/dev/null 2>&1 || { apt-get update && apt-get install -y zip; }
	cd $(BIN)/lambda && rm -f function.zip && zip -q function.zip bootstrap

## sshell-figures: the deliverable's sshell Figures 9-12 (bottom) against a
## local crawl (examples/sshell/run.sh); installs Debian's GNU parallel and
## uuid if missing, for Figure 10 as written (make test does not need them).
.PHONY: sshell-figures
sshell-figures:
	command -v parallel >/dev/null 2>&1 && command -v uuid >/dev/null 2>&1 || { apt-get update && apt-get install -y parallel uuid; }
	sh examples/sshell/run.sh

## sim: the simulator with ARGS, e.g. make sim ARGS="--protocol paxos --faults swarm --check".
sim:
	$(GO) run ./cmd/blossom sim $(ARGS)

## sim-sabotage: the simulator built with failpoints rewritten; enable one
## with GO_FAILPOINTS, e.g.
## GO_FAILPOINTS=$(PKG)/protocols/paxos/quorumOneShort=return(true) make sim-sabotage ARGS=...
sim-sabotage: $(BIN)/failpoint-toolexec
	@mkdir -p $(CURDIR)/.cache/tmp
	$(FP_ENV) $(GO) run $(FP_FLAGS) ./cmd/blossom sim $(ARGS)

## explore-campaign: every planted bug searched by swarm sweeps, PCT, DPOR
## and the exhaustive search with state hashing, with a failpoint build of
## blossom (bin/blossom-fp); prints a table and writes it into
## docs/EXPLORE.md (scripts/explore-campaign.sh; CAMPAIGN_TIME=10s per mode
## and bug, under 20 minutes in all).
explore-campaign: $(BIN)/failpoint-toolexec
	@mkdir -p $(CURDIR)/.cache/tmp
	$(FP_ENV) $(GO) build $(FP_FLAGS) -o $(BIN)/blossom-fp ./cmd/blossom
	CAMPAIGN_DOC=docs/EXPLORE.md scripts/explore-campaign.sh $(BIN)/blossom-fp

## figures: every experiment at its quick size (resuming what results/
## already holds), its figure (PNG, SVG) and results/index.html. It first
## installs the peers the experiments measure against if missing (figure-peers).
figures: figure-peers
	$(GO) run ./cmd/blossom exp all --quick --dir $(CURDIR)/results

## figure-peers: Debian's redis-server (dso-redis-*, barrier) and zookeeperd
## (barrier: the experiment starts its own ZooKeeper on a private port and
## data dir, never the system service), each installed if missing.
.PHONY: figure-peers
figure-peers:
	command -v redis-server >/dev/null 2>&1 || { apt-get update && apt-get install -y redis-server; }
	test -f /usr/share/java/zookeeper.jar && command -v java >/dev/null 2>&1 || { apt-get update && apt-get install -y zookeeperd; }

## fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf $(BIN) $(CURDIR)/.cache

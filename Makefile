# sonde's build. `make test` is what CI runs (.ci/run) and what README.md
# tells a newcomer to run.

GO       ?= go
VERSION  := $(shell cat VERSION)
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH   := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# user@host, as Prometheus' release tool (promu) stamps it; --version shows it.
BUILD_USER ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || uname -n)
LDFLAGS  := -X github.com/prometheus/common/version.Version=$(VERSION) \
            -X github.com/prometheus/common/version.Revision=$(REVISION) \
            -X github.com/prometheus/common/version.Branch=$(BRANCH) \
            -X github.com/prometheus/common/version.BuildUser=$(BUILD_USER) \
            -X github.com/prometheus/common/version.BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build run test vet fmt-check bench bench-vs-blackbox bench-scale bench-overrun clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o sonde .

# ARGS adds flags, e.g. make run ARGS='--web.listen-address=:9116'.
# CONFIG names another configuration file: sonde refuses --config.file
# twice, so it cannot go in ARGS.
CONFIG ?= example.yml
run: build
	./sonde --config.file=$(CONFIG) $(ARGS)

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# test/compat compares sonde with blackbox_exporter $(BBE_VERSION), which
# blackbox-exporter builds into .cache/ first (once; later runs reuse it).
# test/perf counts allocations and stack bytes, which the race detector
# changes: it skips under -race and runs again here without.
test: fmt-check vet blackbox-exporter
	COMPAT_BLACKBOX_EXPORTER=$(abspath $(BBE_BUILD)) $(GO) test -race -count=1 ./...
	$(GO) test -count=1 ./test/perf

# Go native fuzzing: each target in turn for FUZZTIME. `make test` already
# runs every target over its seeds (testdata/fuzz/<target>/); this explores
# beyond them. A crasher is written to the package's testdata/fuzz/<target>/
# and fails the run: keep it there as a regression seed. Minimizing a new
# corpus entry is capped at FUZZMINIMIZETIME, as minimizing a large seed
# (example.yml) would otherwise take up most of a short run.
FUZZTIME         ?= 20s
FUZZMINIMIZETIME ?= 2s
FUZZ_TARGETS     := assert:FuzzAssert config:FuzzLoad prober:FuzzParseTarget prober/dns:FuzzDNSAnswer \
                    prober/tcp:FuzzQueryResponse prober/http:FuzzHTTPResponse prober/grpc:FuzzGRPCAnswer \
                    internal/quickgzip:FuzzQuickGzip

.PHONY: fuzz
fuzz:
	GO=$(GO) test/fuzz.sh $(FUZZTIME) $(FUZZMINIMIZETIME) $(FUZZ_TARGETS)

# Micro-benchmarks of the per-probe path (docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The load harness (bench/, docs/performance.md): sonde and blackbox_exporter
# probing the same loopback targets with the same configuration, alternated
# round by round. BBE is Debian's package (apt-get install
# prometheus-blackbox-exporter) unless BBE= names another binary, such as
# the one `make blackbox-exporter` builds; no binary is ever downloaded.
# BENCH_ARGS adds harness flags, e.g. BENCH_ARGS='--rounds=5 --modules=http,tcp'.
BBE        ?= /usr/bin/prometheus-blackbox-exporter
BENCH_ARGS ?=

# blackbox_exporter built from its source on the Go module proxy, for a
# release Debian does not package:
#   make blackbox-exporter && make bench-vs-blackbox BBE=.cache/blackbox_exporter-v0.28.0
BBE_VERSION ?= v0.28.0
BBE_BUILD   := .cache/blackbox_exporter-$(BBE_VERSION)

.PHONY: blackbox-exporter
blackbox-exporter: $(BBE_BUILD)
$(BBE_BUILD):
	GO=$(GO) bench/build-blackbox.sh $(BBE_VERSION) $@

# The floor (bench/cmd/floor) runs in the same rounds: the network work of
# each probe alone, which the report sets sonde against (A/floor rows).
FLOOR_BUILD := .cache/floor

.PHONY: floor
floor:
	$(GO) build -o $(FLOOR_BUILD) ./bench/cmd/floor

bench-vs-blackbox: build floor
	@test -x "$(BBE)" || { echo "blackbox_exporter not found at $(BBE): apt-get install prometheus-blackbox-exporter, or make bench-vs-blackbox BBE=/path/to/blackbox_exporter"; exit 1; }
	$(GO) run ./bench/cmd/loadharness --exporter ./sonde --vs "$(BBE)" --floor $(FLOOR_BUILD) $(BENCH_ARGS)

# 10,000 probes in flight at once against an HTTP target that answers after
# 2 s, as issue 8 sets it; the scrapes start over 1.5 s, so all are in
# flight together. BENCH_ARGS='--vs $(BBE)' runs blackbox_exporter too, and
# BENCH_ARGS='--scale.prober tcp' holds tcp probes instead of http ones.
bench-scale: build
	$(GO) run ./bench/cmd/loadharness --exporter ./sonde --scale 10000 --scale.delay 2s --scale.ramp 1500ms $(BENCH_ARGS)

# 3,000 probes in flight at once of a target that never finishes its
# answer, as issue 18 sets it: how late past their 3 s deadline the answers
# come, with and without --probe.max-concurrent=500, against blackbox_exporter
# $(BBE_VERSION) (which has no such limit).
bench-overrun: build blackbox-exporter
	$(GO) run ./bench/cmd/loadharness --exporter ./sonde --vs $(BBE_BUILD) --overrun 3000 $(BENCH_ARGS)

clean:
	rm -f sonde

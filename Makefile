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

# The container image (docs/container.md): sonde built static for each
# platform of IMAGE_ARCHS and packed FROM scratch by buildah or podman
# (packaging/image/). The host's platform by default; the release's five,
# as a manifest list, with
#   make image IMAGE_ARCHS="amd64 arm64 arm/v7 ppc64le s390x"
# Nothing is pulled: the CA certificates and time zones are this machine's
# (Debian's ca-certificates and tzdata). `make image-context` stops before
# the build, for docker (see the Dockerfile). The image's name is taken
# from make's command line only, not from the environment, where a CI's
# IMAGE or IMAGE_NAME (the release workflow's, say) means something else.
IMAGE_NAME     = sonde:$(VERSION)
IMAGE_ARCHS    = $(shell $(GO) env GOARCH | sed 's,^arm$$,arm/v7,')
IMAGE_CONTEXT  = .cache/image
IMAGE_BUILDER ?=
IMAGE_ENV      = GO=$(GO) LDFLAGS='$(LDFLAGS)' IMAGE_BUILDER='$(IMAGE_BUILDER)'

.PHONY: image image-context
image:
	$(IMAGE_ENV) packaging/image/build-image.sh '$(IMAGE_NAME)' '$(IMAGE_CONTEXT)' $(IMAGE_ARCHS)

image-context:
	$(IMAGE_ENV) packaging/image/assemble-context.sh '$(IMAGE_CONTEXT)' $(IMAGE_ARCHS)

clean:
	rm -f sonde

# Release files (internal/release, packaging/): `make release` cross-builds
# dist/sonde-<version>.<os>-<arch>.tar.gz (.zip for windows) for every
# platform, `make packages` the deb and rpm for amd64 and arm64 with nfpm
# $(NFPM_VERSION), run from the Go module proxy (nothing added to go.mod);
# each rewrites dist/sha256sums.txt over all of the version's files there.
# Reproducible: revision and branch from git, the build date and every
# file's time from SOURCE_DATE_EPOCH (the last commit's time unless set),
# and a fixed build user. RELEASE_TARGETS (os/arch ...) and PACKAGE_ARCHES
# (amd64 arm64) narrow them, DIST moves them.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
DIST              ?= dist
RELEASE_TARGETS   ?=
PACKAGE_ARCHES    ?=
NFPM_VERSION      ?= v2.48.0
NFPM              ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
RELEASE_FLAGS      = --dist '$(DIST)' --go '$(GO)' --version '$(VERSION)' --revision '$(REVISION)' \
                     --branch '$(BRANCH)' --source-date-epoch '$(SOURCE_DATE_EPOCH)'

.PHONY: release packages clean-release
release:
	$(GO) run ./internal/release/cmd/release archives $(RELEASE_FLAGS) $(RELEASE_TARGETS)

packages:
	$(GO) run ./internal/release/cmd/release packages $(RELEASE_FLAGS) --nfpm '$(NFPM)' $(PACKAGE_ARCHES)

clean: clean-release
clean-release:
	rm -rf dist

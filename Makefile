# cutover — see README.md. Every target works on a fresh machine with only Go
# (bench-* targets install their load generators with apt-get when missing).
GO ?= go
BIN := bin/cutover
FIXTURES := out/fixtures

.PHONY: check-baidu-sdk build test demo bench-sim bench-proxy bench-proxy-summary bench-bench bench-report bench-pipeline bench-import fuzz fixtures clean

build:
	$(GO) build -o $(BIN) ./cmd/cutover
	$(GO) build -o bin/labelbot ./tools/labelbot

# vet + the race-enabled test suite (what CI runs), then the timing tests
# again without -race (the race detector distorts what they measure), and
# the proxy fault tests (1,000 and 2,000 requests a fault) and the
# pipeline crash tests (20,000 items) at full size, and the simulations
# of the stratified estimate and the simulators' fidelity (slow under
# -race, which skips them).
TIMING_TESTS := TestKnownDistribution|TestStallCorrected|TestFixedRate
# None of these measures time: they run side by side, a package per core.
FULL_SIZE_TESTS := TestCanaryCandidateFaults|TestFaultMatrix|TestCrashSafety|TestQueueCrashSafety|TestStratifiedSimulation|TestWeightedEstimateSimulation|TestProfileReproduced
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run '$(TIMING_TESTS)' ./bench
	$(GO) test -count=1 -run '$(FULL_SIZE_TESTS)' ./proxy ./pipeline ./compare/stats ./label ./sim

# The offline story on simulators: fixtures, simulated legacy and candidate,
# 200 labelled images through each provider's real client, a summary table.
demo: build
	./scripts/demo.sh

# Baidu's official Node.js SDK (baidu-aip-sdk 4.16.16, npm) against the
# baidu simulator (its Python SDK needs the Python package index).
check-baidu-sdk: build
	./scripts/check-baidu-sdk.sh

fixtures: build
	./$(BIN) fixtures gen --out $(FIXTURES) --n 2000 --seed 1

# Requests/s of one simulator at --time-scale 0, 10 KB and 100 KB images, wrk.
bench-sim:
	./scripts/bench-sim.sh

# A short coverage-guided run of every decoder of untrusted bytes.
FUZZTIME ?= 10s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin out

# cutover shadow proxy vs the upstream directly, nginx proxy_pass and
# nginx proxy_pass+mirror, side by side (vegeta, nginx, wrk).
bench-proxy:
	./scripts/bench-proxy.sh

# Every bench-proxy figure per saved run (out/bench-proxy/), its median and
# how many runs met its target: quote the median of several runs.
bench-proxy-summary:
	$(GO) run ./tools/benchproxysum $(sort $(wildcard out/bench-proxy/*.txt))

# cutover bench against vegeta at the same settings; send lag at 1,000/s.
bench-bench:
	./scripts/bench-bench.sh

# cutover report over 1,000,000 observations: wall time and peak RSS.
bench-report:
	./scripts/bench-report.sh

# cutover pipeline run throughput: SQLite and PostgreSQL at time scale 0,
# and against the 180 ms HolySheep profile at concurrency 64.
bench-pipeline:
	./scripts/bench-pipeline.sh

# cutover fixtures import of 20,000 catalogue rows with local images:
# images/s per run and the median (the catalogue is generated once).
bench-import:
	./scripts/bench-import.sh

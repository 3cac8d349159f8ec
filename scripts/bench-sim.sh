#!/usr/bin/env bash
# make bench-sim: how many requests a second one simulated provider answers
# at --time-scale 0, with 10 KB and 100 KB images (base64 in JSON), load
# generator (wrk) on the same 2-core machine. Each cell is the median of
# RUNS runs of DURATION. Needs wrk (apt-get install -y wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
command -v wrk >/dev/null || { echo "bench-sim: wrk is missing (apt-get install -y wrk)" >&2; exit 1; }
go build -o bin/cutover ./cmd/cutover
tmp=$(mktemp -d)
trap 'kill $sim 2>/dev/null || true; rm -rf "$tmp"' EXIT
./bin/cutover simulate --config scripts/perf/sim.yaml --time-scale 0 --seed 1 >"$tmp/sim.log" 2>&1 &
sim=$!
for i in $(seq 50); do grep -q holysheep "$tmp/sim.log" 2>/dev/null && break; sleep 0.1; done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-12s %-7s %-10s %-10s %-8s %s\n' format image "req/s" "p99" non2xx "runs (req/s)"
for fmt in rekognition holysheep; do
  case $fmt in
    rekognition) url=http://127.0.0.1:9201/; headers="Content-Type: application/x-amz-json-1.1|X-Amz-Target: RekognitionService.DetectLabels";;
    holysheep) url=http://127.0.0.1:9202/v1/vision/classify; headers="Content-Type: application/json";;
  esac
  for size in 10240 102400; do
    go run ./tools/benchbody -format $fmt -size $size >"$tmp/body" 2>/dev/null
    rates=(); p99s=(); bad=0
    for r in $(seq "$RUNS"); do
      out=$(BODY="$tmp/body" HEADERS="$headers" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s scripts/perf/wrk-post.lua "$url")
      rates+=("$(echo "$out" | awk '/Requests\/sec/ {print $2}')")
      p99s+=("$(echo "$out" | awk '$1=="99%" {print $2}')")
      n=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); bad=$((bad + ${n:-0}))
    done
    med=$(printf '%s\n' "${rates[@]}" | median)
    printf '%-12s %-7s %-10s %-10s %-8s %s\n' $fmt "$((size/1024)) KB" "$med" "${p99s[$((RUNS/2))]}" "$bad" "${rates[*]}"
  done
done

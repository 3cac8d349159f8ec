#!/usr/bin/env bash
# make bench-pipeline: cutover pipeline run (backfill) throughput on this
# machine, simulator, pipeline and database sharing its cores:
#   1. SQLite, provider at --time-scale 0      target ≥ 1,000 images/s
#   2. PostgreSQL, provider at --time-scale 0  target ≥ 800 images/s
#   3. SQLite, the HolySheep profile (180 ms mean), --concurrency 64:
#      target ≥ 95 % of the provider-bound ideal 64 / 0.18 s ≈ 355 images/s
# Items: the 2,000 fixture images (20–200 KB) × 5 products = 10,000 (N_COPIES).
# PostgreSQL: $CUTOVER_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test),
# a fresh schema per run; skipped with a message when unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
N_COPIES=${N_COPIES:-5}
PG=${CUTOVER_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}
go build -o bin/cutover ./cmd/cutover
[ -f out/fixtures/manifest.jsonl ] || ./bin/cutover fixtures gen --out out/fixtures --n 2000 --seed 1 >/dev/null
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; rm -f scripts/perf/pipeline/.*.yaml; }
trap cleanup EXIT
for port in 9501 9502; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "bench-pipeline: port $port is in use: stop the stray process first" >&2; exit 1; fi
done
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
./bin/cutover simulate --config scripts/perf/pipeline/sims.yaml --time-scale 0 >"$tmp/sim.log" 2>&1 & pids+=($!)
./bin/cutover simulate --config scripts/perf/pipeline/sims-180.yaml >"$tmp/sim180.log" 2>&1 & pids+=($!)
wait_port 9501; wait_port 9502

# The manifest: every fixture image under N_COPIES product ids.
abs=$(cd out/fixtures && pwd)
awk -v n="$N_COPIES" -v dir="$abs" '{
  match($0, /"id":"[^"]*"/); id = substr($0, RSTART+6, RLENGTH-7)
  match($0, /"file":"[^"]*"/); file = substr($0, RSTART+8, RLENGTH-9)
  for (k = 1; k <= n; k++) printf "{\"product_id\":\"%s-%d\",\"file\":\"%s/%s\"}\n", id, k, dir, file
}' out/fixtures/manifest.jsonl >"$tmp/manifest.jsonl"
items=$(wc -l <"$tmp/manifest.jsonl")
echo "$items items ($N_COPIES products per fixture image, $(du -sh out/fixtures | cut -f1) of images); $(nproc) cores"

# run NAME PROVIDER STORE CONCURRENCY: one backfill; prints images/s
run() {
  sed -e "s|PROVIDER_URL|$2|" -e "s|STORE_URL|$3|" -e "s|EVENTS|$tmp/$1-events.jsonl|" scripts/perf/pipeline/bench.yaml.tmpl >"scripts/perf/pipeline/.$1.yaml"
  ./bin/cutover pipeline run --config "scripts/perf/pipeline/.$1.yaml" --source "$tmp/manifest.jsonl" --concurrency "$4" --no-progress 2>"$tmp/$1.log" || { cat "$tmp/$1.log" >&2; return 1; }
  grep -o '[0-9]* tagged now.*' "$tmp/$1.log" | head -1 >&2
  sed -n 's/.*(\([0-9]*\) images\/s).*/\1/p' "$tmp/$1.log"
}
s=$(run sqlite 127.0.0.1:9501 "sqlite://$tmp/bench.db" 64)
printf '%-52s %6s images/s (target >= 1000)\n' "SQLite, provider at time scale 0, concurrency 64" "$s"
if command -v psql >/dev/null && psql "$PG" -qc 'select 1' >/dev/null 2>&1; then
  schema=cutover_bench_$$
  psql "$PG" -qc "create schema $schema" >/dev/null
  p=$(run postgres 127.0.0.1:9501 "$PG?search_path=$schema" 64) || true
  psql "$PG" -qc "drop schema $schema cascade" >/dev/null 2>&1
  printf '%-52s %6s images/s (target >= 800)\n' "PostgreSQL, provider at time scale 0, concurrency 64" "$p"
else
  echo "PostgreSQL row skipped: $PG is not reachable with psql (set CUTOVER_BENCH_PG)"
fi
h=$(run holysheep 127.0.0.1:9502 "sqlite://$tmp/bench180.db" 64)
awk -v h="$h" 'BEGIN { ideal = 64 / 0.18; printf "%-52s %6s images/s = %.1f %% of the ideal %.0f (target >= 95 %%)\n", "SQLite, HolySheep profile (180 ms), concurrency 64", h, 100 * h / ideal, ideal }'

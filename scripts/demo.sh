#!/usr/bin/env bash
# make demo: the offline half of the migration story on simulators.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/cutover
# Throw-away demo credentials: config.yaml reads every key from the
# environment; the simulators check them (SigV4 for the Rekognition one).
export CUTOVER_LEGACY_ACCESS_KEY_ID=${CUTOVER_LEGACY_ACCESS_KEY_ID:-AKIDDEMO00000000}
export CUTOVER_LEGACY_SECRET_ACCESS_KEY=${CUTOVER_LEGACY_SECRET_ACCESS_KEY:-demo-only-secret}
export CUTOVER_HOLYSHEEP_API_KEY=${CUTOVER_HOLYSHEEP_API_KEY:-demo-only-holysheep-key}
export CUTOVER_GCV_API_KEY=${CUTOVER_GCV_API_KEY:-demo-only-gcv-key}
export CUTOVER_AZURE_API_KEY=${CUTOVER_AZURE_API_KEY:-demo-only-azure-key}
export CUTOVER_CLIENT_ACCESS_KEY_ID=${CUTOVER_CLIENT_ACCESS_KEY_ID:-AKIDCLIENT000000}
export CUTOVER_CLIENT_SECRET_ACCESS_KEY=${CUTOVER_CLIENT_SECRET_ACCESS_KEY:-demo-only-client-secret}

step() { printf '\n== %s\n' "$*"; }

step "config check"
$BIN config check --config config.yaml

if [ -f out/fixtures/manifest.jsonl ] && $BIN fixtures check out/fixtures >/dev/null 2>&1; then
  step "fixtures: out/fixtures is present and valid"
else
  step "fixtures gen: 2,000 labelled images shaped like the real catalogue"
  $BIN fixtures gen --out out/fixtures --n 2000 --seed 1
fi

step "simulate: legacy (Rekognition), holysheep (OpenAI-compatible vision LLM), holysheep-classify, gcv, azure"
log=$(mktemp)
$BIN simulate --config config.yaml --seed 1 >"$log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  [ "$(grep -c "^ready" "$log")" -ge 5 ] && break
  kill -0 $sim 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
cat "$log"

step "classify 200 fixture images through each provider's real client"
echo "(the simulated clock starts at 09:30 Asia/Singapore: the legacy API's peak hour)"
$BIN classify --config config.yaml --n 200 --concurrency 16 --providers legacy,holysheep,holysheep-classify,gcv,azure

step "bench: legacy vs holysheep, open loop at 40 requests/s, paired image by image, 20 s"
$BIN bench --config config.yaml --providers legacy,holysheep --rate 40 --duration 20s --warmup 2s \
  --run-dir "out/runs/demo-bench-$(date -u +%Y%m%dT%H%M%SZ)"

step "proxy: shadow mode in front of the legacy API, mirroring to holysheep"
run=out/runs/demo-shadow-$(date -u +%Y%m%dT%H%M%SZ)
plog=$(mktemp)
$BIN proxy --config config.yaml --mode shadow --run-dir "$run" >"$plog" 2>"$plog.err" &
proxy=$!
trap 'kill $proxy $sim 2>/dev/null; wait $proxy $sim 2>/dev/null; rm -f "$log" "$plog" "$plog.err"' EXIT
for _ in $(seq 100); do
  grep -q '^proxy shadow on' "$plog" && break
  kill -0 $proxy 2>/dev/null || { cat "$plog" "$plog.err"; exit 1; }
  sleep 0.1
done
cat "$plog"

step "the same 200 images through the proxy: the client only changed its base URL"
$BIN classify --config config.yaml --n 200 --concurrency 16 --providers legacy-via-proxy

step "stop the proxy (SIGTERM): in-flight requests finish, mirrors drain, the run directory is closed"
kill -TERM $proxy
wait $proxy || true
cat "$plog"
ls "$run"

step "done: simulators stopped"

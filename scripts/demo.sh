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
export CUTOVER_LEGACY_CN_SECRET_ID=${CUTOVER_LEGACY_CN_SECRET_ID:-AKIDDEMOTENCENT000}
export CUTOVER_LEGACY_CN_SECRET_KEY=${CUTOVER_LEGACY_CN_SECRET_KEY:-demo-only-tencent-secret}
export CUTOVER_BAIDU_API_KEY=${CUTOVER_BAIDU_API_KEY:-demo-only-baidu-api-key}
export CUTOVER_BAIDU_SECRET_KEY=${CUTOVER_BAIDU_SECRET_KEY:-demo-only-baidu-secret}
export CUTOVER_CLIENT_ACCESS_KEY_ID=${CUTOVER_CLIENT_ACCESS_KEY_ID:-AKIDCLIENT000000}
export CUTOVER_CLIENT_SECRET_ACCESS_KEY=${CUTOVER_CLIENT_SECRET_ACCESS_KEY:-demo-only-client-secret}

step() { printf '\n== %s\n' "$*"; }
# wait_proxy MODE LOG: until the proxy ($proxy) says it listens, or show why it died.
wait_proxy() {
  for _ in $(seq 100); do
    grep -q "^proxy $1 on" "$2" && return 0
    kill -0 $proxy 2>/dev/null || { cat "$2" "$2.err"; exit 1; }
    sleep 0.1
  done
}

step "config check"
$BIN config check --config config.yaml

if [ -f out/fixtures/manifest.jsonl ] && $BIN fixtures check out/fixtures >/dev/null 2>&1; then
  step "fixtures: out/fixtures is present and valid"
else
  step "fixtures gen: 2,000 labelled images shaped like the real catalogue"
  $BIN fixtures gen --out out/fixtures --n 2000 --seed 1
fi

step "simulate: legacy (Rekognition), legacy-cn (Tencent TIIA), holysheep (OpenAI-compatible vision LLM), holysheep-classify, gcv, azure, baidu"
# Two processes: the canary phase takes the candidate (holysheep) down on
# its own to show the fallback and the automatic rollback.
log=$(mktemp)
log2=$(mktemp)
$BIN simulate --config config.yaml --seed 1 --only legacy,legacy-cn,holysheep-classify,gcv,azure,baidu >"$log" 2>&1 &
sim=$!
$BIN simulate --config config.yaml --seed 1 --only holysheep >"$log2" 2>&1 &
sim2=$!
trap 'kill $sim $sim2 2>/dev/null; wait $sim $sim2 2>/dev/null; rm -f "$log" "$log2"' EXIT
for _ in $(seq 100); do
  [ "$(cat "$log" "$log2" | grep -c "^ready")" -ge 7 ] && break
  kill -0 $sim 2>/dev/null && kill -0 $sim2 2>/dev/null || { cat "$log" "$log2"; exit 1; }
  sleep 0.1
done
cat "$log" "$log2"

step "classify 200 fixture images through each provider's real client"
echo "(the simulated clock starts at 09:30 Asia/Singapore: the legacy API's peak hour)"
$BIN classify --config config.yaml --n 200 --concurrency 16 --providers legacy,legacy-cn,holysheep,holysheep-classify,gcv,azure,baidu

step "bench: legacy vs holysheep, open loop at 40 requests/s, paired image by image, 20 s"
bench_run=out/runs/demo-bench-$(date -u +%Y%m%dT%H%M%SZ)
$BIN bench --config config.yaml --providers legacy,holysheep --rate 40 --duration 20s --warmup 2s --run-dir "$bench_run"

step "bench: legacy-cn (Tencent TIIA, ¥7.3 per 1,000 calls) vs holysheep, open loop at 30 requests/s, 20 s"
cn_run=out/runs/demo-bench-cn-$(date -u +%Y%m%dT%H%M%SZ)
$BIN bench --config config.yaml --providers legacy-cn,holysheep --rate 30 --duration 20s --warmup 2s --run-dir "$cn_run"
echo "cost over the legacy-cn bench: CNY prices converted with fx.CNY"
set +e
$BIN report --config config.yaml --format term "$cn_run" >"$cn_run.report.txt"
code=$?
set -e
case $code in 0|10|11) ;; *) cat "$cn_run.report.txt"; exit "$code" ;; esac
sed -n '/^COST/,/^$/p' "$cn_run.report.txt"
grep -q 'CNY' "$cn_run.report.txt" || { echo "the report does not price legacy-cn in CNY" >&2; exit 1; }

step "proxy: shadow mode in front of the legacy API, mirroring to holysheep"
run=out/runs/demo-shadow-$(date -u +%Y%m%dT%H%M%SZ)
plog=$(mktemp)
$BIN proxy --config config.yaml --mode shadow --run-dir "$run" >"$plog" 2>"$plog.err" &
proxy=$!
trap 'kill $proxy $sim $sim2 2>/dev/null; wait $proxy $sim $sim2 2>/dev/null; rm -f "$log" "$log2" "$plog" "$plog.err"' EXIT
wait_proxy shadow "$plog"
cat "$plog"

step "the same 200 images through the proxy: the client only changed its base URL"
$BIN classify --config config.yaml --n 200 --concurrency 16 --providers legacy-via-proxy

step "stop the proxy (SIGTERM): in-flight requests finish, mirrors drain, the run directory is closed"
kill -TERM $proxy
wait $proxy || true
cat "$plog"
ls "$run"

step "report: the go/no-go verdict over the bench and shadow runs (exit 0 GO, 10 NO-GO, 11 INCONCLUSIVE)"
set +e
$BIN report --config config.yaml --format term "$bench_run" "$run"
code=$?
$BIN report --config config.yaml --format html --out out/report.html --hdr-out out/hgrm "$bench_run" "$run"
set -e
case $code in 0|10|11) ;; *) exit "$code" ;; esac
echo "exit code $code; HTML report: out/report.html; percentile spectra: out/hgrm/"

step "label: a person adjudicates a stratified sample of the shadow run's images; here a script answers over the page's HTTP API"
echo "(cutover label draws 60 of the run's distinct images, disagreements oversampled; tools/labelbot answers each with the fixture's label)"
rm -rf out/labels
llog=$(mktemp)
$BIN label --listen 127.0.0.1:8095 --out out/labels --budget 60 --min-per-stratum 10 --exit-when-done "$run" >"$llog" 2>&1 &
labeller=$!
trap 'kill $labeller $sim $sim2 2>/dev/null; wait $labeller $sim $sim2 2>/dev/null; rm -f "$log" "$log2" "$plog" "$plog.err" "$llog"' EXIT
./bin/labelbot --url http://127.0.0.1:8095 --fixtures out/fixtures || { cat "$llog"; exit 1; }
wait $labeller || { cat "$llog"; exit 1; }
cat "$llog"

step "report --labels: each provider's accuracy on the recorded traffic, weighted by the sample's design"
set +e
$BIN report --config config.yaml --format term --labels out/labels "$run" >"$run.labels.txt"
code=$?
set -e
case $code in 0|10|11) ;; *) cat "$run.labels.txt"; exit "$code" ;; esac
echo "(the shadow run's images are fixtures, so every one is labelled: the Providers table's top-1 accuracy, over answered images, is the check on the 60-label estimate, where a failed call counts as wrong)"
awk '/^PROVIDERS/{p=1} p&&/^[A-Z]/&&!/^PROVIDERS|^ACCURACY ON|^LABELLED SAMPLE/{exit} p' "$run.labels.txt"
grep -q 'ACCURACY ON THE RECORDED TRAFFIC' "$run.labels.txt" || { echo "the report has no accuracy on the recorded traffic" >&2; exit 1; }

step "canary: the candidate answers 10 %, then 50 %, then 100 % of calls, translated into Rekognition's format"
echo "(steps and gates: proxy.canary in config.yaml; state in out/canary-state.json; admin API on 127.0.0.1:9091)"
export CUTOVER_ADMIN_TOKEN=${CUTOVER_ADMIN_TOKEN:-demo-only-admin-token}
rm -f out/canary-state.json
canary_run=out/runs/demo-canary-$(date -u +%Y%m%dT%H%M%SZ)
clog=$(mktemp)
$BIN proxy --config config.yaml --mode canary --run-dir "$canary_run" >"$clog" 2>"$clog.err" &
proxy=$!
trap 'kill $proxy $sim $sim2 2>/dev/null; wait $proxy $sim $sim2 2>/dev/null; rm -f "$log" "$log2" "$plog" "$plog.err" "$clog" "$clog.err"' EXIT
wait_proxy canary "$clog"
for round in $(seq 12); do
  $BIN classify --config config.yaml --n 200 --concurrency 16 --providers legacy-via-proxy >/dev/null
  $BIN canary --json status >"$clog.state"
  echo "after $((round * 200)) requests: $($BIN canary status | head -1)"
  grep -q '"complete": true\|"rolled_back": true' "$clog.state" && break
done
$BIN canary status

step "forced failure: the candidate goes down; requests fall back to the legacy and the canary rolls back"
kill $sim2; wait $sim2 2>/dev/null || true
$BIN classify --config config.yaml --n 200 --concurrency 16 --providers legacy-via-proxy | tail -3
sleep 3
$BIN canary status
$BIN canary --json status | grep -q '"rolled_back": true' || { echo "the canary did not roll back" >&2; cat "$clog.err" >&2; exit 1; }
echo "with a wrong admin token, promote is refused:"
CUTOVER_ADMIN_TOKEN=wrong-token $BIN canary promote || true
kill -TERM $proxy
wait $proxy || true
grep -h 'canary\|breaker' "$clog.err" | sed 's/^time=[^ ]* //' | head -12

step "report over the canary run: the rollout and the rollback on its timeline"
set +e
$BIN report --config config.yaml --format term "$canary_run" | sed -n '/^TIMELINE/,$p'
set -e

step "pipeline: the post-cutover tagging service backfills the 2,000 fixture images (SQLite, events to out/events.jsonl)"
rm -f out/pipeline.db out/pipeline.db-wal out/pipeline.db-shm out/events.jsonl
$BIN pipeline run --config config.yaml --source out/fixtures --concurrency 64 --no-progress
step "pipeline: the same backfill again resumes and does nothing twice"
$BIN pipeline run --config config.yaml --source out/fixtures --concurrency 64 --no-progress
$BIN pipeline status --config config.yaml
echo "events: $(wc -l <out/events.jsonl) product_tags_updated lines in out/events.jsonl"

step "done: simulators stopped"

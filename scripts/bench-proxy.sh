#!/usr/bin/env bash
# make bench-proxy: cutover's shadow proxy against the upstream directly,
# nginx proxy_pass and nginx proxy_pass+mirror, measured side by side in one
# run on this machine with an open-loop load generator (vegeta v12.13.0):
# 100 KB base64 bodies, a 20 ms upstream, 200 requests/s. Then a candidate
# at 800 ms and down, a hung candidate with 1 MB bodies (peak RSS), and
# saturation throughput with 10 KB bodies (wrk, 32 connections). Canary
# rows: 50 % answered by a healthy 20 ms candidate against shadow, and the
# fallback cost with a hung candidate (candidate_timeout 100 ms).
# Every row is measured warm: the same load for WARMUP first, discarded
# (a freshly started proxy's first second holds its connection set-up and
# first allocations; the upstream and nginx stay up between rows, so
# without it only cutover's rows would pay that start).
# Client verification (proxy.clients, SigV4 checked on every request) gets
# its own interleaved row. The interleaved blocks also measure the floor
# of any proxy on net/http (tools/netfloor: httputil.ReverseProxy reading
# the body whole, as cutover does, and nothing else), so that cutover's
# added latency can be read as what net/http costs on this host plus what
# cutover adds to it. BASELINE=<git revision> also builds that
# revision and measures it side by side in the same run: its shadow and
# canary rows in the interleaved blocks, its slow- and down-candidate rows,
# its hung-candidate RSS and its saturation rate, summarised as "build
# comparison" lines.
# Installs nginx-light, wrk and vegeta when missing. Tunables: DURATION
# (default 20s), WARMUP (5s), RATE (200), BLOCKS (4, interleaved 5 s blocks per path), SAT_DURATION (10s),
# HANG_DURATION (60s), CUTOVER_GOMAXPROCS (unset: GOMAXPROCS for the cutover proxies
# only, to compare scheduler settings without touching the anchors).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
RATE=${RATE:-200}
SAT_DURATION=${SAT_DURATION:-10s}
HANG_DURATION=${HANG_DURATION:-60s}
export PATH="$PATH:$(go env GOPATH)/bin:/usr/sbin"
need_apt=""
command -v nginx >/dev/null || need_apt="$need_apt nginx-light"
command -v wrk >/dev/null || need_apt="$need_apt wrk"
if [ -n "$need_apt" ]; then apt-get update -qq && apt-get install -y -qq $need_apt >/dev/null; fi
command -v vegeta >/dev/null || (cd /tmp && GOFLAGS= go install github.com/tsenart/vegeta/v12@v12.13.0)
go build -o bin/cutover ./cmd/cutover
go build -o bin/netfloor ./tools/netfloor
BASE_BIN=""
if [ -n "${BASELINE:-}" ]; then
  # The baseline build, from a throw-away worktree of that revision.
  basedir=$(mktemp -d)
  git worktree add -q --detach "$basedir" "$BASELINE"
  (cd "$basedir" && go build -o "$OLDPWD/bin/cutover-base" ./cmd/cutover)
  git worktree remove --force "$basedir"
  BASE_BIN=./bin/cutover-base
fi
# Each run's output is kept in out/bench-proxy/ (UTC start time), so that
# `make bench-proxy-summary` can print every figure's median over several
# runs (tools/benchproxysum reads the summary lines below; keep
# their wording in step with it). A run cut short stays a .partial file.
mkdir -p out/bench-proxy
saved="out/bench-proxy/$(date -u +%Y%m%dT%H%M%SZ).txt"
exec > >(tee "$saved.partial")
[ -f out/fixtures/manifest.jsonl ] || ./bin/cutover fixtures gen --out out/fixtures --n 2000 --seed 1 >/dev/null

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$tmp/nginx/nginx.pid" ] && kill "$(cat "$tmp/nginx/nginx.pid")" 2>/dev/null || true
  # only these: the tee that keeps this output ends when the script does
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port_free() { if (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null; then echo "bench-proxy: port $1 is already in use (a stray process?): stop it first" >&2; exit 1; fi; }
for port in 9301 9302 9303 9304 9305 9306 9311 9312 9313 9314 9315 9321 9322 9323 9324 9325 9326 9327 9328 9329 9331 9332 9333 9341 9342 9343 9344 9345 9346 9421 9422 9423 9424 9425 9426 9427 9428 9429 9441 9442 9443 9444 9445 9446; do port_free $port; done
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

./bin/cutover simulate --config scripts/perf/proxy/sims.yaml --seed 1 >"$tmp/sims.log" 2>&1 & pids+=($!)
./bin/cutover simulate --config scripts/perf/proxy/sims-zero.yaml --seed 1 --time-scale 0 >"$tmp/sims0.log" 2>&1 & pids+=($!)
mkdir -p "$tmp/nginx/tmp"
cp scripts/perf/proxy/nginx.conf "$tmp/nginx/"
nginx -p "$tmp/nginx" -c nginx.conf
./bin/netfloor -listen 127.0.0.1:9315 -upstream http://127.0.0.1:9301 2>"$tmp/netfloor.err" & pids+=($!)
for port in 9301 9302 9303 9304 9305 9306 9331 9332 9333 9311 9312 9313 9314 9315; do wait_port $port; done

# start_cutover NAME PRIMARY CANDIDATE LISTEN ADMIN [EXTRA]: a cutover proxy
# (shadow, or EXTRA lines appended to its proxy section, e.g. a canary);
# BIN picks the build (default this one), LEGACY_CREDS the primary's
# credentials (set for the client-verification row, which re-signs).
start_cutover() {
  sed -e "s/PRIMARY/$2/" -e "s/CANDIDATE_URL/$3/" -e "s/LISTEN/$4/" -e "s/ADMIN/$5/" \
    -e "s/candidate: CANDIDATE/candidate: ${CANDIDATE:-candidate}/" -e "s|LEGACY_CREDS|${LEGACY_CREDS:-}|" \
    scripts/perf/proxy/proxy.yaml.tmpl >"scripts/perf/proxy/.$1.yaml"
  [ -n "${6:-}" ] && printf '%s\n' "$6" | sed 's/^/  /' >>"scripts/perf/proxy/.$1.yaml"
  GOMAXPROCS=${CUTOVER_GOMAXPROCS:-} ${BIN:-./bin/cutover} proxy --config "scripts/perf/proxy/.$1.yaml" --run-dir "$tmp/run-$1" >"$tmp/$1.log" 2>"$tmp/$1.err" &
  cutover_pid=$!
  pids+=($cutover_pid)
  wait_port "${4##*:}"
}
# stop_cutover [PID]: stops the last proxy started, or PID
stop_cutover() { local pid=${1:-$cutover_pid}; kill -TERM "$pid" 2>/dev/null || { echo "bench-proxy: the cutover proxy exited early:" >&2; cat "$tmp"/*.err >&2; exit 1; }; wait "$pid" 2>/dev/null || true; rm -f scripts/perf/proxy/.*.yaml; }

go run ./tools/benchbody -format rekognition -size 75000 >"$tmp/body100k" 2>/dev/null
go run ./tools/benchbody -format rekognition -size 7500 >"$tmp/body10k" 2>/dev/null
go run ./tools/benchbody -format rekognition -size 780000 >"$tmp/body1m" 2>/dev/null
targets() {
  printf 'POST http://%s/\nContent-Type: application/x-amz-json-1.1\nX-Amz-Target: RekognitionService.DetectLabels\n' "$1"
  [ -n "${3:-}" ] && printf '%s\n' "$3"
  printf '@%s\n' "$2"
}
# signed_headers ADDR: SigV4 headers of the 100 KB body for ADDR, signed
# now with the bench client's key pair (valid for 15 minutes).
BENCH_CLIENT="clients: [{name: bench, access_key_id: AKIDBENCHCLIENT01, secret_access_key: bench-client-secret}]"
signed_headers() {
  go run ./tools/benchbody -format rekognition -size 75000 -sign-host "$1" -access-key AKIDBENCHCLIENT01 \
    -secret-key bench-client-secret -headers "$tmp/signed-$1" 2>/dev/null >"$tmp/signed-body-$1"
  cmp -s "$tmp/signed-body-$1" "$tmp/body100k" || { echo "bench-proxy: the signed body differs from the 100 KB body" >&2; exit 1; }
  cat "$tmp/signed-$1"
}

# attack LABEL ADDR BODY: one open-loop run; prints a table row
results="$tmp/results.txt"
attack() {
  targets "$2" "$3" >"$tmp/targets"
  vegeta attack -rate "$RATE/s" -duration "$WARMUP" -timeout 30s -targets "$tmp/targets" >/dev/null
  vegeta attack -rate "$RATE/s" -duration "$DURATION" -timeout 30s -targets "$tmp/targets" >"$tmp/$1.bin"
  vegeta report -type json "$tmp/$1.bin" >"$tmp/$1.json"
  read -r n ok p50 p99 max < <(go run ./tools/vegetasum "$tmp/$1.json")
  printf '%-44s %7s %8s %9s %9s %9s\n' "$1" "$n" "$ok" "$p50" "$p99" "$max" | tee -a "$results"
}
echo "body $(wc -c <"$tmp/body100k") bytes, $RATE requests/s for $DURATION after a $WARMUP warm-up, open loop (vegeta); latency in ms"
printf '%-44s %7s %8s %9s %9s %9s\n' path requests success p50 p99 max | tee "$results"
attack "upstream directly" 127.0.0.1:9301 "$tmp/body100k"
attack "nginx proxy_pass" 127.0.0.1:9311 "$tmp/body100k"
attack "nginx proxy_pass + mirror (20 ms candidate)" 127.0.0.1:9312 "$tmp/body100k"
start_cutover fast 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9321 127.0.0.1:9421
attack "cutover shadow (20 ms candidate)" 127.0.0.1:9321 "$tmp/body100k"
stop_cutover
start_cutover slow 127.0.0.1:9301 127.0.0.1:9305 127.0.0.1:9322 127.0.0.1:9422
attack "cutover shadow (800 ms candidate)" 127.0.0.1:9322 "$tmp/body100k"
stop_cutover
start_cutover down 127.0.0.1:9301 127.0.0.1:9399 127.0.0.1:9323 127.0.0.1:9423
attack "cutover shadow (candidate down)" 127.0.0.1:9323 "$tmp/body100k"
stop_cutover
attack "nginx proxy_pass + mirror (800 ms candidate)" 127.0.0.1:9313 "$tmp/body100k"
start_cutover canary 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9326 127.0.0.1:9426 \
  "mode: canary
canary: {percent: 50, sticky_by: request, compare_with_legacy: false, state_file: $tmp/canary-state.json}"
attack "cutover canary 50 % (20 ms candidate)" 127.0.0.1:9326 "$tmp/body100k"
stop_cutover
start_cutover fallback 127.0.0.1:9301 127.0.0.1:9306 127.0.0.1:9327 127.0.0.1:9427 \
  "mode: canary
canary: {percent: 100, candidate_timeout: 100ms, rollback: {error_rate: 100%}, compare_with_legacy: false, state_file: $tmp/fallback-state.json}"
attack "cutover canary, hung candidate (fallback)" 127.0.0.1:9327 "$tmp/body100k"
stop_cutover

# The main comparison again, interleaved: the upstream directly, nginx
# proxy_pass, nginx proxy_pass+mirror, cutover shadow and cutover canary
# 50 %, all up at once, in 5 s blocks that take turns (the order reversed
# every other block), pooled per path, so that a slower stretch of this
# shared VM falls on every row rather than on one. The sequential rows
# above each had their own 20 s; these are the fairer side-by-side figures.
BLOCKS=${BLOCKS:-4}
start_cutover ishadow 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9321 127.0.0.1:9421
ishadow_pid=$cutover_pid
start_cutover icanary 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9326 127.0.0.1:9426 \
  "mode: canary
canary: {percent: 50, sticky_by: request, compare_with_legacy: false, state_file: $tmp/icanary-state.json}"
icanary_pid=$cutover_pid
# Client verification on: every request's SigV4 signature checked with the
# bench client's key pair, then re-signed with the legacy's credentials.
LEGACY_CREDS=", credentials: {access_key_id: AKIDBENCHLEGACY01, secret_access_key: bench-legacy-secret}" \
  start_cutover iverify 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9329 127.0.0.1:9429 "$BENCH_CLIENT"
iverify_pid=$cutover_pid
ikeys=(d n m g s c v)
declare -A iaddr=([d]=127.0.0.1:9301 [n]=127.0.0.1:9311 [m]=127.0.0.1:9312 [g]=127.0.0.1:9315 [s]=127.0.0.1:9321 [c]=127.0.0.1:9326 [v]=127.0.0.1:9329)
declare -A ilabel=([d]="upstream directly, interleaved" [n]="nginx proxy_pass, interleaved" [m]="nginx proxy_pass + mirror, interleaved"
  [g]="net/http floor (netfloor), interleaved"
  [s]="cutover shadow (20 ms), interleaved" [c]="cutover canary 50 %, interleaved" [v]="cutover shadow, clients verified, interleaved")
base_pids=()
if [ -n "$BASE_BIN" ]; then
  BIN=$BASE_BIN start_cutover bshadow 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9341 127.0.0.1:9441
  base_pids+=($cutover_pid)
  BIN=$BASE_BIN start_cutover bcanary 127.0.0.1:9301 127.0.0.1:9304 127.0.0.1:9342 127.0.0.1:9442 \
    "mode: canary
canary: {percent: 50, sticky_by: request, compare_with_legacy: false, state_file: $tmp/bcanary-state.json}"
  base_pids+=($cutover_pid)
  ikeys+=(bs bc)
  iaddr[bs]=127.0.0.1:9341 iaddr[bc]=127.0.0.1:9342
  ilabel[bs]="base build: shadow (20 ms), interleaved" ilabel[bc]="base build: canary 50 %, interleaved"
fi
block() {
  targets "$2" "$tmp/body100k" "${3:-}" >"$tmp/targets-$1"
  vegeta attack -rate "$RATE/s" -duration "${4:-5s}" -timeout 30s -targets "$tmp/targets-$1"
}
hdrs() { [ "$1" = v ] && signed_headers "${iaddr[v]}" || true; }
for k in "${ikeys[@]}"; do block "$k" "${iaddr[$k]}" "$(hdrs "$k")" "$WARMUP" >/dev/null; done
for i in $(seq "$BLOCKS"); do
  order=("${ikeys[@]}")
  if [ $((i % 2)) = 0 ]; then order=(); for ((j=${#ikeys[@]}-1; j>=0; j--)); do order+=("${ikeys[$j]}"); done; fi
  for k in "${order[@]}"; do block "$k" "${iaddr[$k]}" "$(hdrs "$k")" >"$tmp/i$k$i.bin"; done
done
grep -q '"verified"\|reason="' "$tmp/iverify.err" 2>/dev/null || true
stop_cutover "$iverify_pid"
stop_cutover "$icanary_pid"
stop_cutover "$ishadow_pid"
for p in "${base_pids[@]}"; do stop_cutover "$p"; done
for k in "${ikeys[@]}"; do
  vegeta report -type json "$tmp"/i$k[0-9]*.bin >"$tmp/i$k.json"
  read -r n ok p50 p99 max < <(go run ./tools/vegetasum "$tmp/i$k.json")
  printf '%-44s %7s %8s %9s %9s %9s\n' "${ilabel[$k]}" "$n" "$ok" "$p50" "$p99" "$max" | tee -a "$results"
done
if [ -n "$BASE_BIN" ]; then
  BIN=$BASE_BIN start_cutover bslow 127.0.0.1:9301 127.0.0.1:9305 127.0.0.1:9343 127.0.0.1:9443
  attack "base build: shadow (800 ms candidate)" 127.0.0.1:9343 "$tmp/body100k"
  stop_cutover
  BIN=$BASE_BIN start_cutover bdown 127.0.0.1:9301 127.0.0.1:9399 127.0.0.1:9344 127.0.0.1:9444
  attack "base build: shadow (candidate down)" 127.0.0.1:9344 "$tmp/body100k"
  stop_cutover
fi

row() { grep -F "$1" "$results" | head -1 | awk '{print $(NF-2), $(NF-1)}'; }
read -r d50 d99 < <(row "upstream directly")
read -r m50 m99 < <(row "nginx proxy_pass + mirror (20 ms")
read -r id50 id99 < <(row "upstream directly, interleaved")
read -r im50 im99 < <(row "nginx proxy_pass + mirror, interleaved")
read -r c50 c99 < <(row "cutover shadow (20 ms")
read -r s50 s99 < <(row "cutover shadow (800 ms")
read -r x50 x99 < <(row "cutover shadow (candidate down")
read -r k50 k99 < <(row "cutover canary 50 %")
read -r f50 f99 < <(row "cutover canary, hung candidate")
read -r is50 is99 < <(row "cutover shadow (20 ms), interleaved")
read -r ic50 ic99 < <(row "cutover canary 50 %, interleaved")
read -r iv50 iv99 < <(row "cutover shadow, clients verified, interleaved")
read -r ig50 ig99 < <(row "net/http floor (netfloor), interleaved")
echo
awk -v d50="$d50" -v d99="$d99" -v m50="$m50" -v m99="$m99" -v id50="$id50" -v id99="$id99" -v im50="$im50" -v im99="$im99" -v c50="$c50" -v c99="$c99" -v s99="$s99" -v x99="$x99" -v k50="$k50" -v k99="$k99" -v f50="$f50" -v f99="$f99" -v is50="$is50" -v is99="$is99" -v ic50="$ic50" -v ic99="$ic99" -v iv50="$iv50" -v iv99="$iv99" -v ig50="$ig50" -v ig99="$ig99" -v blocks="$BLOCKS" 'BEGIN {
  printf "cutover added latency over direct: p50 %+.2f ms (target <= 0.5), p99 %+.2f ms (target <= 2); nginx mirror: p50 %+.2f, p99 %+.2f\n", c50-d50, c99-d99, m50-d50, m99-d99
  printf "  the same, interleaved %s x 5 s blocks: p50 %+.2f ms, p99 %+.2f ms; nginx mirror: p50 %+.2f, p99 %+.2f\n", blocks, is50-id50, is99-id99, im50-id50, im99-id99
  printf "with client verification (SigV4 checked, re-signed), interleaved: p50 %+.2f ms (target <= 0.5), p99 %+.2f ms over direct\n", iv50-id50, iv99-id99
  printf "net/http floor (ReverseProxy, body read whole, nothing mirrored or recorded), interleaved: p50 %+.2f ms, p99 %+.2f ms over direct; cutover shadow over the floor: p50 %+.2f ms, p99 %+.2f ms\n", ig50-id50, ig99-id99, is50-ig50, is99-ig99
  printf "client p99 with an 800 ms candidate: %+.2f ms vs the fast-candidate case (target within 2)\n", s99-c99
  printf "client p99 with the candidate down:  %+.2f ms vs the fast-candidate case (target within 2)\n", x99-c99
  printf "canary 50 %% with a healthy candidate: p50 %+.2f ms, p99 %+.2f ms vs shadow (target: p99 no more than shadow)\n", k50-c50, k99-c99
  printf "  the same, interleaved %s x 5 s blocks: p50 %+.2f ms, p99 %+.2f ms vs shadow\n", blocks, ic50-is50, ic99-is99
  printf "fallback after a 100 ms candidate timeout: p50 %.2f ms = timeout + legacy direct p50 %+.2f ms; p99 %+.2f ms over 100 + direct p99\n", f50, f50-100-d50, f99-100-d99
}'

echo
echo "hung candidate (60 s), 1 MB bodies, $RATE requests/s for $HANG_DURATION:"
start_cutover hung 127.0.0.1:9301 127.0.0.1:9306 127.0.0.1:9324 127.0.0.1:9424
targets 127.0.0.1:9324 "$tmp/body1m" >"$tmp/targets"
vegeta attack -rate "$RATE/s" -duration "$HANG_DURATION" -timeout 30s -targets "$tmp/targets" >"$tmp/hung.bin"
peak=$(awk '/VmHWM/ {print $2}' /proc/$cutover_pid/status)
vegeta report -type json "$tmp/hung.bin" >"$tmp/hung.json"
read -r n ok p50 p99 max < <(go run ./tools/vegetasum "$tmp/hung.json")
stop_cutover
skips=$(sed -n '/"skipped"/,/}/p' "$tmp/run-hung/run.json" | grep -o '"[a-z_]*": [0-9]*' | tr '\n' ' ')
printf 'peak RSS %d MB (target < 256); client p50 %s ms p99 %s ms, success %s; mirrors dropped: %s\n' $((peak/1024)) "$p50" "$p99" "$ok" "$skips"
base_peak=""
if [ -n "$BASE_BIN" ]; then
  BIN=$BASE_BIN start_cutover bhung 127.0.0.1:9301 127.0.0.1:9306 127.0.0.1:9345 127.0.0.1:9445
  targets 127.0.0.1:9345 "$tmp/body1m" >"$tmp/targets"
  vegeta attack -rate "$RATE/s" -duration "$HANG_DURATION" -timeout 30s -targets "$tmp/targets" >"$tmp/bhung.bin"
  base_peak=$(( $(awk '/VmHWM/ {print $2}' /proc/$cutover_pid/status) / 1024 ))
  stop_cutover
fi

echo
echo "saturation, 10 KB bodies, mirroring on, instant upstreams (wrk -t2 -c32 -d$SAT_DURATION, median of 3 rounds taking turns):"
# Every process shares the two cores, the simulated upstreams too, so the
# like-for-like row mirrors to nginx's own Rekognition-format upstream
# (cutover still decodes, re-encodes and records every call); the OpenAI
# row adds the translation and an upstream that costs the simulator more.
# The three paths take turns, round by round, so that the host's slower
# minutes fall on all of them.
satfile="$tmp/sat.txt"
rate() {
  BODY="$tmp/body10k" HEADERS="Content-Type: application/x-amz-json-1.1|X-Amz-Target: RekognitionService.DetectLabels" \
    wrk -t2 -c32 -d"$SAT_DURATION" -s scripts/perf/wrk-post.lua "http://$1/" | awk '/Requests\/sec/ {print $2}'
}
coverage() {
  local seen mirrored
  seen=$(grep -o '"seen": [0-9]*' "$tmp/run-$1/run.json" | grep -o '[0-9]*$')
  mirrored=$(grep -o '"mirrored": [0-9]*' "$tmp/run-$1/run.json" | grep -o '[0-9]*$')
  printf '%-56s (mirrored %s of %s calls)\n' "" "$mirrored" "$seen"
}
CANDIDATE=same-format start_cutover sat 127.0.0.1:9331 127.0.0.1:9332 127.0.0.1:9325 127.0.0.1:9425
sat_pid=$cutover_pid
start_cutover satai 127.0.0.1:9331 127.0.0.1:9333 127.0.0.1:9328 127.0.0.1:9428
satai_pid=$cutover_pid
satkeys=(n s o)
declare -A sataddr=([n]=127.0.0.1:9314 [s]=127.0.0.1:9325 [o]=127.0.0.1:9328)
declare -A satlabel=([n]="nginx proxy_pass + mirror" [s]="cutover shadow, same-format candidate (as nginx)" [o]="cutover shadow, OpenAI-format candidate")
if [ -n "$BASE_BIN" ]; then
  CANDIDATE=same-format BIN=$BASE_BIN start_cutover bsat 127.0.0.1:9331 127.0.0.1:9332 127.0.0.1:9346 127.0.0.1:9446
  bsat_pid=$cutover_pid
  satkeys+=(b)
  sataddr[b]=127.0.0.1:9346
  satlabel[b]="base build: shadow, same-format candidate"
fi
declare -A satruns=()
for _ in 1 2 3; do
  for k in "${satkeys[@]}"; do satruns[$k]="${satruns[$k]:-} $(rate "${sataddr[$k]}")"; done
done
stop_cutover "$satai_pid"
stop_cutover "$sat_pid"
[ -n "$BASE_BIN" ] && stop_cutover "$bsat_pid"
for k in "${satkeys[@]}"; do
  med=$(printf '%s\n' ${satruns[$k]} | sort -n | sed -n 2p)
  printf '%-56s %10s   (runs: %s)\n' "${satlabel[$k]}" "$med" "${satruns[$k]# }"
  printf '%s\n' "$med" >>"$satfile"
  case $k in s) coverage sat ;; o) coverage satai ;; esac
done
awk 'NR==1 {n=$1} NR==2 {s=$1} NR==3 {o=$1} END {
  printf "saturation: cutover (same-format) / nginx mirror = %.2f (target >= 1); OpenAI-format candidate / nginx = %.2f\n", s/n, o/n }' "$satfile"
if [ -n "$BASE_BIN" ]; then
  read -r bs50 bs99 < <(row "base build: shadow (20 ms), interleaved")
  read -r bc50 bc99 < <(row "base build: canary 50 %, interleaved")
  read -r bw50 bw99 < <(row "base build: shadow (800 ms candidate)")
  read -r bx50 bx99 < <(row "base build: shadow (candidate down)")
  echo
  echo "build comparison: base $BASELINE vs this build, in this run"
  awk -v id50="$id50" -v id99="$id99" -v is50="$is50" -v is99="$is99" -v ic50="$ic50" -v ic99="$ic99" -v bs50="$bs50" -v bs99="$bs99" \
      -v bc50="$bc50" -v bc99="$bc99" -v c99="$c99" -v s99="$s99" -v x99="$x99" -v bw99="$bw99" -v bx99="$bx99" \
      -v peak="$((peak/1024))" -v bpeak="$base_peak" 'BEGIN {
    printf "  shadow added over direct, interleaved: base p50 %+.2f p99 %+.2f ms; this build p50 %+.2f p99 %+.2f ms\n", bs50-id50, bs99-id99, is50-id50, is99-id99
    printf "  canary 50 %% added over direct, interleaved: base p50 %+.2f p99 %+.2f ms; this build p50 %+.2f p99 %+.2f ms\n", bc50-id50, bc99-id99, ic50-id50, ic99-id99
    printf "  p99 800 ms candidate - direct: base %+.2f ms; this build %+.2f ms\n", bw99-id99, s99-id99
    printf "  p99 candidate down - direct: base %+.2f ms; this build %+.2f ms\n", bx99-id99, x99-id99
    printf "  hung candidate peak RSS: base %d MB; this build %d MB\n", bpeak, peak
  }'
  awk 'NR==2 {s=$1} NR==4 {b=$1} END { printf "  saturation, same-format: base %.0f req/s; this build %.0f req/s; this build / base = %.2f (target >= 0.90)\n", b, s, s/b }' "$satfile"
fi
mv "$saved.partial" "$saved"
echo
echo "saved to $saved; the median of every figure over the saved runs: make bench-proxy-summary"

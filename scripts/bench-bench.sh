#!/usr/bin/env bash
# make bench-bench: cutover bench against vegeta v12.13.0 at the same
# settings, in one run, against one simulator at --time-scale 0 on this
# machine: (1) maximum sustained rate, closed loop with the same number of
# workers (cutover --rate 0 --concurrency N; vegeta -rate 0 -max-workers N),
# the same image (a 40 KB fixture JPEG) and duration, median of 3; (2)
# cutover's scheduled-send lag at 1,000 requests/s open loop.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-32}
DURATION=${DURATION:-10s}
export PATH="$PATH:$(go env GOPATH)/bin"
command -v vegeta >/dev/null || (cd /tmp && GOFLAGS= go install github.com/tsenart/vegeta/v12@v12.13.0)
go build -o bin/cutover ./cmd/cutover
[ -f out/fixtures/manifest.jsonl ] || ./bin/cutover fixtures gen --out out/fixtures --n 2000 --seed 1 >/dev/null
tmp=$(mktemp -d)
trap 'kill $sim 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
./bin/cutover simulate --config scripts/perf/bench-sim.yaml --time-scale 0 >"$tmp/sim.log" 2>&1 &
sim=$!
for _ in $(seq 100); do grep -q '^ready' "$tmp/sim.log" 2>/dev/null && break; sleep 0.1; done

# One fixture image of about 40 KB for both tools.
img=$(ls -S out/fixtures/images/*.jpg | awk 'NR>1 {print}' | while read -r f; do s=$(wc -c <"$f"); [ "$s" -le 42000 ] && [ "$s" -ge 38000 ] && echo "$f" && break; done)
mkdir -p "$tmp/fx/images"
cp "$img" "$tmp/fx/images/one.jpg"
sha=$(sha256sum "$img" | cut -d' ' -f1)
printf '{"id":"one","file":"images/one.jpg","sha256":"%s","category":"apparel/topwear/tshirts","group":"fashion"}\n' "$sha" >"$tmp/fx/manifest.jsonl"
printf '{"model":"vision-classifier-v3","image":"%s","task":"product_classification","parameters":{"confidence_threshold":0,"max_categories":10,"include_attributes":true,"attribute_types":["color","pattern","material","style"]}}' \
  "$(base64 -w0 "$img")" >"$tmp/body"
printf 'POST http://127.0.0.1:9501/v1/vision/classify\nContent-Type: application/json\n@%s\n' "$tmp/body" >"$tmp/targets"

echo "image $(wc -c <"$img") bytes; closed loop, $WORKERS workers, $DURATION, median of 3 (requests/s)"
v=(); c=()
for i in 1 2 3; do
  vegeta attack -rate 0 -max-workers "$WORKERS" -workers "$WORKERS" -duration "$DURATION" -targets "$tmp/targets" >"$tmp/v.bin"
  v+=("$(vegeta report -type json "$tmp/v.bin" | go run ./tools/vegetasum /dev/stdin | awk -v d="${DURATION%s}" '{printf "%.0f", $1/d}')")
  c+=("$(./bin/cutover bench --config scripts/perf/bench-sim.yaml --fixtures "$tmp/fx" --providers sim --rate 0 --concurrency "$WORKERS" \
        --duration "$DURATION" --repeat 0 --run-dir "$tmp/run-c$i" 2>/dev/null | awk '/ sent in / {gsub(/[(\/s);]/, "", $7); print $7}')")
done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
printf '%-28s %8s   (runs: %s)\n' "vegeta v12.13.0" "$(med "${v[@]}")" "${v[*]}"
printf '%-28s %8s   (runs: %s)\n' "cutover bench" "$(med "${c[@]}")" "${c[*]}"

echo
echo "open loop at 1,000 requests/s for $DURATION:"
./bin/cutover bench --config scripts/perf/bench-sim.yaml --fixtures "$tmp/fx" --providers sim --rate 1000 --duration "$DURATION" \
  --repeat 0 --run-dir "$tmp/run-lag" 2>/dev/null | grep -E "scheduled|sent in"

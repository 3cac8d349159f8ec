#!/usr/bin/env bash
# make check-baidu-sdk: Baidu's official Node.js SDK (baidu-aip-sdk 4.16.16,
# from the npm registry) against the baidu simulator. The SDK hard-codes
# https://aip.baidubce.com; its documented request interceptor
# (HttpClient.setRequestInterceptor) points it at the simulator, nothing
# else is changed. Baidu's Python SDK (baidu-aip) is not used: the Python
# package index is not reachable from this project's machines.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null && command -v npm >/dev/null || { echo "check-baidu-sdk needs node and npm (apt-get install -y nodejs npm)" >&2; exit 1; }
SDK=out/baidu-sdk
if [ ! -f "$SDK/node_modules/baidu-aip-sdk/package.json" ]; then
  mkdir -p "$SDK"
  npm install --prefix "$SDK" --no-audit --no-fund --silent baidu-aip-sdk@4.16.16
fi
export CUTOVER_LEGACY_ACCESS_KEY_ID=x CUTOVER_LEGACY_SECRET_ACCESS_KEY=x CUTOVER_HOLYSHEEP_API_KEY=x CUTOVER_GCV_API_KEY=x \
  CUTOVER_AZURE_API_KEY=x CUTOVER_CLIENT_ACCESS_KEY_ID=x CUTOVER_CLIENT_SECRET_ACCESS_KEY=x \
  CUTOVER_LEGACY_CN_SECRET_ID=x CUTOVER_LEGACY_CN_SECRET_KEY=x
export CUTOVER_BAIDU_API_KEY=${CUTOVER_BAIDU_API_KEY:-demo-only-baidu-api-key}
export CUTOVER_BAIDU_SECRET_KEY=${CUTOVER_BAIDU_SECRET_KEY:-demo-only-baidu-secret}
log=$(mktemp)
./bin/cutover simulate --config config.yaml --seed 1 --only baidu >"$log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q '^ready baidu' "$log" && break
  kill -0 $sim 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
url=$(awk '/^ready baidu/ {print $4}' "$log")
img=$(ls out/fixtures/images/* 2>/dev/null | head -1 || true)
NODE_PATH="$SDK/node_modules" SIM_URL="$url" IMAGE="$img" node scripts/check-baidu-sdk.js

#!/usr/bin/env bash
# make bench-import: cutover fixtures import of a 20,000-row catalogue with
# local images (the Fashion Product Images layout: styles.csv and
# images/<id>.jpg, names and frequencies from the real catalogue), RUNS
# times; prints images/s for each run and the median. Target ≥ 2,000
# images/s on this machine.
# The catalogue is generated once and kept in out/bench-import/catalogue
# (N and SEED change it; delete the folder to regenerate). Each run writes
# a fresh set to out/bench-import/set and checks it with fixtures check.
# Before each run the page cache is dropped (when run as root), so every
# run reads the images from disk; COLD=0 keeps the cache (warm runs).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
SEED=${SEED:-1}
RUNS=${RUNS:-5}
CONCURRENCY=${CONCURRENCY:-16}
COLD=${COLD:-1}
dir=out/bench-import
cat=$dir/catalogue
go build -o bin/cutover ./cmd/cutover
if [ ! -f "$cat/styles.csv" ] || [ "$(cat "$cat/.spec" 2>/dev/null)" != "$N $SEED" ]; then
  rm -rf "$cat"
  echo "generating a $N-row catalogue in $cat (once)…"
  ./bin/cutover fixtures gen --preset fashion-product-images --n "$N" --seed "$SEED" --out "$cat"
  echo "$N $SEED" >"$cat/.spec"
fi
echo "catalogue: $N rows, $(du -sh "$cat/images" | cut -f1) of JPEG images; $(nproc) cores, --concurrency $CONCURRENCY"
rates=()
for i in $(seq "$RUNS"); do
  rm -rf "$dir/set"
  # Drop the page cache when allowed, so every run reads from disk as the first would.
  sync; cold=" (warm page cache)"
  if [ "$COLD" = 1 ] && (echo 1 >/proc/sys/vm/drop_caches) 2>/dev/null; then cold=" (page cache dropped)"; fi
  out=$(./bin/cutover fixtures import --no-progress --concurrency "$CONCURRENCY" --out "$dir/set" --preset fashion-product-images "$cat")
  line=$(grep '^imported ' <<<"$out")
  rate=$(sed -E 's/.*\(([0-9]+) images\/s.*/\1/' <<<"$line")
  rates+=("$rate")
  echo "run $i: $rate images/s$cold — $line"
done
./bin/cutover fixtures check "$dir/set" | tail -1
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
echo "median: $median images/s over $RUNS runs (target ≥ 2000)"

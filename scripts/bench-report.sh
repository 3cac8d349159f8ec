#!/usr/bin/env bash
# make bench-report: cutover report over 1,000,000 observations (a day of a
# busy shadow proxy: 500,000 pairs over 20,000 labelled images). Target: at
# most 10 s and 500 MB peak RSS on this machine. Median of 3 runs, next to
# the I/O floor (cat of the same files) measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
OUT=out/bench-report
go build -o bin/cutover ./cmd/cutover
go build -o bin/benchreport ./tools/benchreport
if [ ! -f "$OUT/run/run.json" ] || [ "$(cat "$OUT/n" 2>/dev/null)" != "$N" ]; then
  echo "generating $N observations in $OUT/run …"
  ./bin/benchreport gen --out "$OUT" --n "$N"
  echo "$N" > "$OUT/n"
fi
echo "run directory: $(du -sh "$OUT/run" | cut -f1), $(ls "$OUT"/run/observations-* | wc -l) observation files; $(nproc) cores"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
walls=(); rss=(); floor=()
for i in 1 2 3; do
  read -r w r code < <(./bin/benchreport measure -- ./bin/cutover report --config "$OUT/config.yaml" --format json "$OUT/run")
  read -r f _ _ < <(./bin/benchreport measure -- sh -c "cat $OUT/run/observations-* > /dev/null")
  printf 'run %d: report %6.2f s, %5.0f MiB peak RSS (verdict exit %s); cat floor %5.2f s\n' "$i" "$w" "$r" "$code" "$f"
  walls+=("$w"); rss+=("$r"); floor+=("$f")
done
W=$(printf '%s\n' "${walls[@]}" | median)
R=$(printf '%s\n' "${rss[@]}" | median)
F=$(printf '%s\n' "${floor[@]}" | median)
printf '\nmedian: report %.2f s and %.0f MiB for %s observations (target ≤ 10 s, ≤ 500 MB); cat floor %.2f s\n' "$W" "$R" "$N" "$F"
awk -v w="$W" -v r="$R" 'BEGIN { if (w > 10 || r > 500) { print "TARGET MISSED"; exit 1 } else print "target met" }'

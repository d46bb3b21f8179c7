#!/usr/bin/env bash
# Markov order 1 on ROWS (1,000,000) exported paths over CHANNELS (20) channels, end to end from
# the CSV file: `passerelle attribution --model markov_1` (exact removal effects) against the
# reference Python package ChannelAttribution (removal effects estimated by simulation) on the
# same file, RUNS (5) times each, alternating; medians, the ratio, and how far the two
# attributions are apart per channel.
#
#   bash bench/attribution.sh
#
# Needs `pip install channelattribution matplotlib` (it builds its C++ core from source).
# Knobs: ROWS, CHANNELS, RUNS, BIN (a binary built elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
CHANNELS=${CHANNELS:-20}
RUNS=${RUNS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p passerelle
  BIN=$CARGO_TARGET_DIR/release/passerelle
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/attribution_paths.py "$ROWS" "$CHANNELS" "$work/paths.csv"
echo "== $ROWS rows, $CHANNELS channels, $(du -h "$work/paths.csv" | cut -f1) of CSV; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
: >"$work/ours" ; : >"$work/theirs"
for run in $(seq 1 "$RUNS"); do
  start=$(date +%s.%N)
  "$BIN" attribution --paths "$work/paths.csv" --model markov_1 --format csv >"$work/ours.csv"
  end=$(date +%s.%N)
  echo "$end - $start" | bc >>"$work/ours"
  python3 bench/attribution_reference.py "$work/paths.csv" "$work/theirs.csv" >/dev/null 2>"$work/theirs.time"
  cut -d, -f2 "$work/theirs.time" >>"$work/theirs"
  echo "run $run: passerelle $(tail -1 "$work/ours") s, ChannelAttribution $(tail -1 "$work/theirs") s"
done
ours=$(median <"$work/ours"); theirs=$(median <"$work/theirs")
echo "== median end to end: passerelle ${ours} s, ChannelAttribution ${theirs} s (its time excludes Python start-up and imports), ratio $(echo "scale=1; $theirs / $ours" | bc)x"
python3 - "$work/ours.csv" "$work/theirs.csv" <<'PY'
import csv, sys
ours = {r["channel"]: float(r["markov_1_conversions"]) for r in csv.DictReader(open(sys.argv[1]))}
theirs = {r["channel"]: float(r["conversions"]) for r in csv.DictReader(open(sys.argv[2]))}
total = sum(ours.values())
worst = max(abs(ours[c] - theirs.get(c, 0.0)) / total for c in ours)
print(f"== agreement: total conversions {total:.0f} (ChannelAttribution {sum(theirs.values()):.0f}); "
      f"largest gap in a channel's share {100 * worst:.3f} points")
for c in sorted(ours, key=ours.get, reverse=True)[:5]:
    print(f"   {c}: passerelle {ours[c]:.1f}, ChannelAttribution {theirs.get(c, 0.0):.1f}")
PY

#!/usr/bin/env bash
# Consolidation benchmark: `vhdx consolidate NEW FULL INC1 … INC10` against `vhdx restore OUT
# FULL INC1 … INC10` of the same chain, in one run (issue 20: consolidate ≤ 1.2× the restore).
#
#   Scripts/bench-consolidate.sh
#
# The disk (BENCH_SIZE virtual, `vhdx create` + `track enable`, untimed): its first half
# written with `vhdx write --input`: alternately 64 MiB of random bytes (AES-CTR keystream,
# fixed key) and 64 MiB of a tar of /usr (compressible), the second half never written. A full
# export, then ten rounds of: 1% of the disk rewritten (random 1 MiB pieces at pseudo-random
# MiB offsets, from BENCH_SEED), 64 MiB of zeros written, and (rounds 3 and 7) a grow by 64 MiB
# and (round 5) a shrink by 64 MiB; an incremental export with --base the previous one after
# each round.
#
# Timed (BENCH_RUNS rounds each, median; each run's output deleted, `sync`, BENCH_SETTLE s pause
# and the inputs read with cat first: warm cache):
#   vhdx restore r.vhdx full inc1 … inc10         the reference
#   vhdx restore r.raw full inc1 … inc10          raw output
#   vhdx consolidate cons.vxs full inc1 … inc10   the figure
# Peak RSS: /usr/bin/time -f %M. Correctness (untimed): the consolidation restored to raw and
# compared (cmp) with the chain's raw restore, and `vhdx verify` of the source against it.
#
# Environment: BENCH_SIZE (default 2G, a multiple of 128 MiB), BENCH_RUNS (default 1),
# BENCH_SEED (default 1), BENCH_SETTLE (default 2), BENCH_DIR (default /tmp), BENCH_SCRATCH,
# BENCH_KEEP=1 (as in the other bench scripts).
set -euo pipefail
export LC_ALL=C

SIZE_ARG=${BENCH_SIZE:-2G}
RUNS=${BENCH_RUNS:-1}
SEED=${BENCH_SEED:-1}
SETTLE=${BENCH_SETTLE:-2}
PARENT=${BENCH_DIR:-/tmp}

BENCH_NAME=bench-consolidate
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_size_mg "$SIZE_ARG" 128
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"

bench_header "disk $((SIZE / MiB)) MiB (first half written: random and tar of /usr alternately), 1 full + 10 incrementals (1% rewritten + 64 MiB zeroed each, two grows, a shrink), runs=${RUNS} (median), seed=${SEED}, settle=${SETTLE} s, warm cache" \
    BENCH_SIZE BENCH_RUNS BENCH_SEED BENCH_SETTLE BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require /usr/bin/time:time tar:tar cmp:diffutils
bench_build
bench_workdir "$PARENT"
echo

D=$W/disk.vhdx
make_tracked_mixed "$D" "$SIZE"
"$VHDX" export "$D" "$W/full.vxs" >/dev/null
chain=("$W/full.vxs")
size=$SIZE
rng=$SEED
next_rand() { rng=$(((rng * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff)); echo $((rng >> 16)); }
for k in $(seq 1 10); do
    if ((k == 3 || k == 7)); then size=$((size + 64 * MiB)); "$VHDX" resize "$D" "$size" >/dev/null; fi
    if ((k == 5)); then
        "$VHDX" write "$D" --offset $((size - 64 * MiB)) --zero --length $((64 * MiB)) >/dev/null
        size=$((size - 64 * MiB)); "$VHDX" resize "$D" "$size" >/dev/null
    fi
    pieces=$((size / MiB / 100))
    for ((p = 0; p < pieces; p++)); do
        at=$(($(next_rand) % (size / MiB) * MiB))
        rand_stream "$(printf '%032x' $((k * 100000 + p)))" | head -c "$MiB" >"$W/piece" || true
        "$VHDX" write "$D" --offset "$at" --input "$W/piece" --length "$MiB" >/dev/null
    done
    "$VHDX" write "$D" --offset $(($(next_rand) % (size / MiB - 64) * MiB)) --zero --length $((64 * MiB)) >/dev/null
    "$VHDX" export "$D" "$W/inc$k.vxs" --base "${chain[-1]}" >/dev/null
    chain+=("$W/inc$k.vxs")
done
rm -f "$W/piece"
echo "chain: $(du -cb "${chain[@]}" | tail -n 1 | cut -f1) bytes in ${#chain[@]} streams; final size $((size / MiB)) MiB"

declare -A T RSS
run() {  # run ID OUTPUT CMD...
    local id=$1 out=$2 r t0 t1
    shift 2
    for ((r = 1; r <= RUNS; r++)); do
        rm -f -- "$out"
        sync
        sleep "$SETTLE"
        cat "${chain[@]}" >/dev/null
        t0=$(now_us)
        /usr/bin/time -f %M -o "$RSSF" "$@" >/dev/null || die "$id failed"
        t1=$(now_us)
        T[$id]+="$(fmt_s $((t1 - t0))) "
        RSS[$id]=$(tail -n 1 "$RSSF")
    done
}
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run restore "$W/r.vhdx" "$VHDX" restore "$W/r.vhdx" "${chain[@]}"
rm -f "$W/r.vhdx"
run restore-raw "$W/r.raw" "$VHDX" restore "$W/r.raw" "${chain[@]}"
run consolidate "$W/cons.vxs" "$VHDX" consolidate "$W/cons.vxs" "${chain[@]}"

# Correctness, untimed.
"$VHDX" restore "$W/c.raw" "$W/cons.vxs" >/dev/null
cmp "$W/c.raw" "$W/r.raw" || die "the consolidation restores differently from the chain"
"$VHDX" verify "$D" "$W/cons.vxs" >/dev/null || die "the source differs from the consolidation"
echo "checked: consolidation restored = chain restored (cmp), source verified against it"
echo

ref=$(median "${T[restore]}")
printf '%-46s %9s %10s %8s  %s\n' "figure" "seconds" "peak MiB" "× restore" "runs"
for id in restore restore-raw consolidate; do
    m=$(median "${T[$id]}")
    printf '%-46s %9s %10s %8s  %s\n' "$id" "$m" "$(awk -v k="${RSS[$id]}" 'BEGIN{printf "%.1f", k/1024}')" \
        "$(awk -v a="$m" -v b="$ref" 'BEGIN{printf "%.2f", a/b}')" "${T[$id]}"
done
echo "consolidated stream: $(stat -c %s "$W/cons.vxs") bytes"
c=$(median "${T[consolidate]}")
awk -v a="$c" -v b="$ref" 'BEGIN { r = a / b; printf "target consolidate ≤ 1.2× restore (.vhdx): %.2f× %s\n", r, (r <= 1.2 ? "PASS" : "MISS") }'

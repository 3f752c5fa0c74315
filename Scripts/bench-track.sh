#!/usr/bin/env bash
# Change-tracking benchmark: what tracking costs writers, how fast seal and changes answer, and
# how much room the tracking region takes, in one run.
#
#   Scripts/bench-track.sh
#
# 1. Write overhead, tracking on vs off, same writes, same run (VHDXBench: open, writes, flush,
#    close, timed in-process; the "on" image has a tracking region and a change ID sealed
#    just before, untimed, so every run starts from an empty epoch):
#    (a) sequential 1 MiB writes filling BENCH_SEQ_GIB GiB of a fresh dynamic disk;
#    (b) BENCH_WRITES random 4 KiB writes at 4 KiB-aligned offsets over a BENCH_SIZE_GIB GiB
#        disk whose blocks are all allocated already (rewrites in place);
#    (c) the same random writes into a fresh dynamic disk.
#    One warm-up round, then BENCH_RUNS rounds (on/off order alternating); the median is
#    reported. Then one more run of each under `strace -c` counts the fdatasync calls, which is
#    where tracking's extra log commits show (each commit costs two: before and after the log
#    entry). Every tracked image's answer to `changes --since` is checked against the writes.
# 2. seal + changes on a 64 TiB dynamic disk with BENCH_GRANULE_WRITES (16,384) distinct 64 KiB
#    writes at random granule-aligned offsets (1 GiB) made with tracking on (untimed). Per
#    run, on a sparse copy of that disk: one process (VHDXBench track-query) opens it, seals,
#    asks changes since the ID sealed before the writes, and checks the answer (seal and
#    changes timed in-process; peak RSS of the whole process by /usr/bin/time -v); and the CLI
#    as a user runs it, `vhdx track seal` then `vhdx track changes`, whole processes.
# 3. Size of the tracking region with the default granule (64 KiB) and history (16), for 1 GiB
#    to 64 TiB disks (`vhdx track status --json` region-bytes), and per retained ID (history
#    1 vs 64).
#
# Environment:
#   BENCH_RUNS            timed rounds per measurement, the median is reported (default 3)
#   BENCH_SIZE_GIB        virtual size of the random-write disks, GiB (default 4)
#   BENCH_SEQ_GIB         GiB written sequentially in 1 (a) (default 2; the disk is BENCH_SIZE_GIB)
#   BENCH_WRITES          random 4 KiB writes per run in 1 (b), (c) (default 20000)
#   BENCH_GRANULE_WRITES  64 KiB writes in part 2 (default 16384: 1 GiB)
#   BENCH_SEED            seed of the write sequences (default 1)
#   BENCH_SETTLE          seconds to wait (untimed) after the sync before each timed run (default 2)
#   BENCH_DIR             parent of the work directory (default /var/tmp); a fresh mktemp -d
#                         is made inside it and removed on exit
#   BENCH_SCRATCH         swift build --scratch-path (default: the package's .build)
#   BENCH_KEEP=1          keep the work directory
#
# No thresholds: the targets (write overhead within 5%, seal and changes under 50 ms, peak RSS
# under 64 MiB) are printed next to the figures, never enforced. Timings are wall clock with a
# warm page cache; before each timed run `sync` and a BENCH_SETTLE pause (untimed), as in
# bench-write.sh.
set -euo pipefail
export LC_ALL=C

RUNS=${BENCH_RUNS:-3}
SIZE_GIB=${BENCH_SIZE_GIB:-4}
SEQ_GIB=${BENCH_SEQ_GIB:-2}
WRITES=${BENCH_WRITES:-20000}
GWRITES=${BENCH_GRANULE_WRITES:-16384}
SEED=${BENCH_SEED:-1}
SETTLE=${BENCH_SETTLE:-2}
PARENT=${BENCH_DIR:-/var/tmp}

BENCH_NAME=bench-track
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
for v in RUNS SIZE_GIB SEQ_GIB WRITES GWRITES; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_${v/GWRITES/GRANULE_WRITES} must be a positive integer (got '${!v}')"
done
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer (got '$SEED')"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "BENCH_SETTLE must be a non-negative integer (got '$SETTLE')"
((SEQ_GIB <= SIZE_GIB)) || die "BENCH_SEQ_GIB ($SEQ_GIB) must not exceed BENCH_SIZE_GIB ($SIZE_GIB)"

bench_header "runs=${RUNS} (median reported, 1 warm-up), random-write disk ${SIZE_GIB} GiB, sequential ${SEQ_GIB} GiB, random writes=${WRITES}, 64 KiB writes=${GWRITES}, seed=${SEED}, settle=${SETTLE} s" \
    BENCH_RUNS BENCH_SIZE_GIB BENCH_SEQ_GIB BENCH_WRITES BENCH_GRANULE_WRITES BENCH_SEED BENCH_SETTLE BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require /usr/bin/time:time strace:strace
bench_build bench

# ---------------------------------------------------------------- work dir
# Room: two fully allocated random-write disks, two sequential ones, the 64 TiB disk's data
# (1 GiB per 16,384 writes) three times (it and two copies), plus slack.
need_gib=$((2 * SIZE_GIB + 2 * SEQ_GIB + 3 * (GWRITES * 64 / 1048576 + 1) + 2))
avail_gib=$(df -P -B1G "$PARENT" | awk 'NR==2 {print $4}')
echo "space:    ${avail_gib} GiB free under $PARENT (df), about ${need_gib} GiB needed"
((avail_gib >= need_gib)) || die "not enough free space under $PARENT: ${avail_gib} GiB, need about ${need_gib} GiB (set BENCH_DIR)"
bench_workdir "$PARENT"
echo

# ---------------------------------------------------------------- helpers
# fdatasyncs CMD...: runs CMD under strace -f -c; prints its fdatasync + fsync count.
fdatasyncs() {
    strace -f -c -e trace=fdatasync,fsync -o "$W/.strace" "$@" >/dev/null
    awk '$NF == "fdatasync" || $NF == "fsync" { n += $4 } END { print n + 0 }' "$W/.strace"
}
# make_tracked FILE: enables tracking and seals a first ID (printed), all untimed.
make_tracked() {
    "$VHDX" track enable "$1" >/dev/null 2>&1 || die "track enable $1 failed"
    "$VHDX" track seal "$1"
}

# ================================================================ 1. write overhead
SIZE=$((SIZE_GIB * GiB))
SEQ_BYTES=$((SEQ_GIB * GiB))
FULL_OFF=$W/full-off.vhdx
FULL_ON=$W/full-on.vhdx
echo "== 1. write overhead, tracking on vs off"
echo "making the fully allocated ${SIZE_GIB} GiB disks (sequential 1 MiB writes, then two copies; untimed)..."
"$VHDX" create "$W/full.vhdx" "${SIZE_GIB}G" >/dev/null
"$BENCH" seq-writes "$W/full.vhdx" --bytes "$SIZE" >/dev/null
cp --sparse=always "$W/full.vhdx" "$FULL_OFF"
cp --sparse=always "$W/full.vhdx" "$FULL_ON"
rm -f -- "$W/full.vhdx"
make_tracked "$FULL_ON" >/dev/null
sync

snames=("sequential 1 MiB, fresh dynamic" "random 4 KiB, all blocks allocated" "random 4 KiB, fresh dynamic")
sdesc=("${SEQ_GIB} GiB in 1 MiB writes" "${WRITES} writes over ${SIZE_GIB} GiB" "${WRITES} writes over ${SIZE_GIB} GiB")
S=${#snames[@]}
# prep K MODE: (re)makes the scenario's image; prints its path. For "on", ID_PREP is the ID
# sealed just before the run (what the answer is checked from).
ID_PREP=""
img_of() { # K MODE
    case $1 in
        0) echo "$W/seq-$2.vhdx" ;;
        1) [[ $2 == on ]] && echo "$FULL_ON" || echo "$FULL_OFF" ;;
        2) echo "$W/rand-$2.vhdx" ;;
    esac
}
prep() { # K MODE
    local f
    f=$(img_of "$1" "$2")
    if (($1 != 1)); then
        rm -f -- "$f"
        "$VHDX" create "$f" "${SIZE_GIB}G" >/dev/null
        if [[ $2 == on ]]; then ID_PREP=$(make_tracked "$f"); fi
    elif [[ $2 == on ]]; then
        ID_PREP=$("$VHDX" track seal "$f")  # an empty open epoch and a clear coarse map each run
    fi
}
write_cmd() { # K FILE
    case $1 in
        0) echo "$BENCH" seq-writes "$2" --bytes "$SEQ_BYTES" ;;
        *) echo "$BENCH" random-writes "$2" --count "$WRITES" --seed "$SEED" ;;
    esac
}
# run_one K MODE: prepares, settles, runs the writes; sets T_S (VHDXBench's total_s), T_W (its
# write loop) and T_F (its final flush + close).
run_one() {
    local f out
    prep "$1" "$2"
    f=$(img_of "$1" "$2")
    settle
    out=$($(write_cmd "$1" "$f")) || die "VHDXBench failed on $f"
    [[ $(kv tracked "$out") == $([[ $2 == on ]] && echo 1 || echo 0) ]] || die "$f: tracked=$(kv tracked "$out"), expected tracking $2"
    T_S=$(kv total_s "$out")
    T_W=$(kv write_s "$out")
    T_F=$(kv flush_close_s "$out")
}

declare -A times wtimes ftimes
echo "warm-up round (untimed)..."
for ((k = 0; k < S; k++)); do run_one $k off; run_one $k on; done
for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < S; k++)); do
        if ((r % 2)); then order=(off on); else order=(on off); fi
        for m in "${order[@]}"; do
            run_one $k "$m"
            times[$k,$m]+="$T_S "
            wtimes[$k,$m]+="$T_W "
            ftimes[$k,$m]+="$T_F "
        done
    done
done

# Verify: the last "on" run of each scenario, answered from the ID sealed just before it.
echo "verify (last run's images):"
declare -a exact answer
for ((k = 0; k < S; k++)); do
    for m in off on; do
        f=$(img_of $k $m)
        "$VHDX" check "$f" >/dev/null || die "vhdx check $(basename "$f") reports problems"
    done
    f=$(img_of $k on)
    # The ID sealed right before that run: the latest but one (the run wrote after it; no seal since).
    since=$("$VHDX" track status "$f" --json | sed -n 's/.*"latest-id": *"\([^"]*\)".*/\1/p')
    if ((k == 0)); then plan=(--seq-bytes "$SEQ_BYTES"); else plan=(--count "$WRITES" --seed "$SEED"); fi
    q=$("$BENCH" track-query "$f" "$since" "${plan[@]}") || die "$(basename "$f"): the tracked answer does not cover the writes"
    exact[k]=$(kv exact "$q")
    answer[k]="$(kv ranges "$q") ranges, $(( $(kv changed_bytes "$q") / 1048576 )) MiB answered for $(( $(kv expected_bytes "$q") / 1048576 )) MiB of granules written"
    echo "  ok  vhdx check (on and off); $(basename "$f"): changes --since covers every write: ${answer[k]}$( ((exact[k])) && echo ", exact" || echo ", NOT exact (coarsened)")"
done

echo "counting fdatasync + fsync calls (one more run of each, under strace -f -c)..."
declare -A syncs
for ((k = 0; k < S; k++)); do
    for m in off on; do
        prep $k $m
        f=$(img_of $k $m)
        syncs[$k,$m]=$(fdatasyncs $(write_cmd $k "$f"))
    done
done

printf '%-36s %-26s %8s %8s %8s %7s %7s   %s\n' "scenario" "writes" "off s" "on s" "on/off" "syncs" "syncs" "all runs off | on (s)"
printf '%-36s %-26s %8s %8s %8s %7s %7s   %s\n' "" "" "(median)" "(median)" "" "off" "on" ""
printf '%-36s %-26s %8s %8s %8s %7s %7s   %s\n' "------------------------------------" "--------------------------" "--------" "--------" "------" "-----" "-----" "---------------------"
declare -a med_off med_on
for ((k = 0; k < S; k++)); do
    # shellcheck disable=SC2086
    med_off[k]=$(median ${times[$k,off]})
    # shellcheck disable=SC2086
    med_on[k]=$(median ${times[$k,on]})
    awk -v n="${snames[k]}" -v d="${sdesc[k]}" -v a="${med_off[k]}" -v b="${med_on[k]}" -v so="${syncs[$k,off]}" -v sn="${syncs[$k,on]}" \
        -v ao="${times[$k,off]}" -v an="${times[$k,on]}" 'BEGIN {
        printf "%-36s %-26s %8.3f %8.3f %8.3f %7d %7d   %s| %s\n", n, d, a, b, b / a, so, sn, ao, an }'
done
echo "Split into VHDXBench's write loop and its final flush + close, medians (s, off | on):"
for ((k = 0; k < S; k++)); do
    # shellcheck disable=SC2086
    awk -v n="${snames[k]}" -v wo="$(median ${wtimes[$k,off]})" -v wn="$(median ${wtimes[$k,on]})" \
        -v fo="$(median ${ftimes[$k,off]})" -v fn="$(median ${ftimes[$k,on]})" 'BEGIN {
        printf "  %-36s write loop %7.3f | %7.3f (x%.2f)   flush+close %7.3f | %7.3f (x%.2f)\n", n, wo, wn, wn / wo, fo, fn, fn / fo }'
done
echo "s = VHDXBench's open-to-close time (open, writes, flush, close; CLOCK_MONOTONIC), median of ${RUNS} after 1 warm-up."
echo "on/off = on s / off s (target: at most 1.05). syncs = fdatasync + fsync calls of one further run (strace -f -c);"
echo "every log commit costs two (before the entry and of the entry), so (on - off) / 2 ≈ tracking's extra log commits."
echo

# ================================================================ 2. seal + changes, 64 TiB
G64=$W/t64.vhdx
echo "== 2. seal + changes: 64 TiB dynamic disk, ${GWRITES} distinct 64 KiB writes at random granule-aligned offsets"
"$VHDX" create "$G64" 64T >/dev/null
ID64=$(make_tracked "$G64")
t0=$(now_us)
out=$("$BENCH" random-writes "$G64" --count "$GWRITES" --seed "$SEED" --write-size 65536 --distinct 1) || die "the 64 KiB writes failed"
t1=$(now_us)
[[ $(kv tracked "$out") == 1 ]] || die "the 64 KiB writes were not tracked"
awk -v us=$((t1 - t0)) -v n="$GWRITES" -v f="$(stat -c %s "$G64")" -v a="$(du -B1 "$G64" | cut -f1)" 'BEGIN {
    printf "writes (untimed for the targets): %d x 64 KiB in %.1f s; file %.0f GiB apparent, %.0f MiB allocated\n", n, us / 1e6, f / 2^30, a / 2^20 }'
echo "change ID sealed before the writes: $ID64"
sync
Q_ARGS=(--count "$GWRITES" --seed "$SEED" --write-size 65536 --distinct 1)
declare -a s_seal s_changes s_open s_rss c_seal c_changes c_seal_rss c_changes_rss
for ((r = 0; r <= RUNS; r++)); do  # r = 0: warm-up
    # The engine, in-process: open, seal, changes(since:), answer checked.
    cp --sparse=always "$G64" "$W/q.vhdx"
    settle
    /usr/bin/time -v -o "$W/.time" "$BENCH" track-query "$W/q.vhdx" "$ID64" --seal 1 "${Q_ARGS[@]}" >"$W/.q" || die "track-query failed"
    q=$(cat "$W/.q")
    # The CLI: vhdx track seal, then vhdx track changes, whole processes (timed bare; RSS separately).
    cp --sparse=always "$G64" "$W/c.vhdx"
    settle
    t0=$(now_us); "$VHDX" track seal "$W/c.vhdx" >/dev/null; t1=$(now_us)
    t2=$(now_us); "$VHDX" track changes "$W/c.vhdx" --since "$ID64" >"$W/.ranges"; t3=$(now_us)
    /usr/bin/time -v -o "$W/.time2" "$VHDX" track changes "$W/c.vhdx" --since "$ID64" >/dev/null
    ((r == 0)) && continue
    s_open+=("$(kv open_ms "$q")"); s_seal+=("$(kv seal_ms "$q")"); s_changes+=("$(kv changes_ms "$q")")
    s_rss+=("$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/.time")")
    c_seal+=("$(awk -v us=$((t1 - t0)) 'BEGIN { printf "%.3f", us / 1000 }')")
    c_changes+=("$(awk -v us=$((t3 - t2)) 'BEGIN { printf "%.3f", us / 1000 }')")
    c_changes_rss+=("$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/.time2")")
done
nr=$(wc -l <"$W/.ranges")
((nr == $(kv ranges "$q"))) || die "vhdx track changes printed $nr ranges, the engine answered $(kv ranges "$q")"
echo "answer: $(kv ranges "$q") ranges, $(( $(kv changed_bytes "$q") / 1048576 )) MiB (written: $(kv expected_ranges "$q") ranges, $(( $(kv expected_bytes "$q") / 1048576 )) MiB), exact=$(kv exact "$q"); the CLI printed $nr ranges"
RSS64=$(median "${s_rss[@]}")
printf '%-52s %10s %10s   %s\n' "measurement" "median" "target" "all runs"
printf '%-52s %10s %10s   %s\n' "----------------------------------------------------" "------" "------" "--------"
row() { printf '%-52s %10s %10s   %s\n' "$1" "$2" "$3" "$4"; }
row "open (engine, in-process), ms" "$(median "${s_open[@]}")" "" "${s_open[*]}"
row "seal (engine, in-process), ms" "$(median "${s_seal[@]}")" "< 50" "${s_seal[*]}"
row "changes --since (engine, in-process), ms" "$(median "${s_changes[@]}")" "< 50" "${s_changes[*]}"
row "peak RSS, open + seal + changes process, MiB" "$(awk -v k="$RSS64" 'BEGIN { printf "%.1f", k / 1024 }')" "< 64" "$(printf '%s ' "${s_rss[@]}" | awk '{ for (i = 1; i <= NF; i++) printf "%.1f ", $i / 1024 }')"
row "vhdx track seal (whole process), ms" "$(median "${c_seal[@]}")" "" "${c_seal[*]}"
row "vhdx track changes --since (whole process), ms" "$(median "${c_changes[@]}")" "" "${c_changes[*]}"
row "peak RSS, vhdx track changes, MiB" "$(awk -v k="$(median "${c_changes_rss[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')" "" "$(printf '%s ' "${c_changes_rss[@]}" | awk '{ for (i = 1; i <= NF; i++) printf "%.1f ", $i / 1024 }')"
echo "Each run on a fresh sparse copy of the disk (cp --sparse=always), after sync and a ${SETTLE} s pause; 1 warm-up run."
echo "seal includes its log commit (two fdatasyncs); whole-process times include process start (~12 ms) and,"
echo "for changes, printing ${nr} lines to a file."
rm -f -- "$W/q.vhdx" "$W/c.vhdx"
echo

# ================================================================ 3. region size
echo "== 3. tracking region size (default granule 64 KiB; history 16 unless stated)"
sizes=(1G 127G 1T 16T 64T)
printf '%-8s %10s %12s %14s %14s %16s %12s\n' "disk" "history" "region MiB" "MiB per TiB" "history 1 MiB" "history 64 MiB" "KiB per ID"
printf '%-8s %10s %12s %14s %14s %16s %12s\n' "--------" "-------" "----------" "-----------" "-------------" "--------------" "----------"
declare -a reg16
i=0
for sz in "${sizes[@]}"; do
    f=$W/r.vhdx
    declare -A reg=()
    for h in 16 1 64; do
        rm -f -- "$f"
        "$VHDX" create "$f" "$sz" >/dev/null
        "$VHDX" track enable --history "$h" "$f" >/dev/null 2>&1 || die "track enable --history $h on a $sz disk failed"
        reg[$h]=$("$VHDX" track status "$f" --json | json_int region-bytes)
    done
    vs=$("$VHDX" info "$f" --json | json_int virtual-size)
    reg16[i]=${reg[16]}
    awk -v n="$sz" -v r="${reg[16]}" -v r1="${reg[1]}" -v r64="${reg[64]}" -v vs="$vs" 'BEGIN {
        printf "%-8s %10d %12.0f %14.2f %14.0f %16.0f %12.0f\n", n, 16, r / 2^20, (r / 2^20) / (vs / 2^40), r1 / 2^20, r64 / 2^20, (r64 - r1) / 63 / 1024 }'
    i=$((i + 1))
    rm -f -- "$f"
done
echo "KiB per ID = (history 64 - history 1) / 63: what each retained ID adds (one slot of max(64 KiB, 256 KiB"
echo "per TiB), up to 1 MiB rounding); the region is 8 KiB + (history + 2) slots, rounded up to 1 MiB."
echo

# ================================================================ summary
echo "== summary"
printf '%-52s %14s %10s\n' "figure" "value" "target"
printf '%-52s %14s %10s\n' "----------------------------------------------------" "--------------" "------"
for ((k = 0; k < S; k++)); do
    printf '%-52s %14s %10s\n' "write time on/off: ${snames[k]}" "$(awk -v a="${med_off[k]}" -v b="${med_on[k]}" 'BEGIN { printf "%.3f", b / a }')" "<= 1.05"
    printf '%-52s %14s %10s\n' "  extra fdatasync+fsync calls with tracking" "$((syncs[$k,on] - syncs[$k,off]))" ""
done
printf '%-52s %14s %10s\n' "64 TiB, 1 GiB changed: seal, ms" "$(median "${s_seal[@]}")" "< 50"
printf '%-52s %14s %10s\n' "64 TiB, 1 GiB changed: changes, ms" "$(median "${s_changes[@]}")" "< 50"
printf '%-52s %14s %10s\n' "64 TiB, 1 GiB changed: peak RSS (open+seal+query), MiB" "$(awk -v k="$RSS64" 'BEGIN { printf "%.1f", k / 1024 }')" "< 64"
i=0
for sz in "${sizes[@]}"; do
    printf '%-52s %14s %10s\n' "region, $sz disk (history 16), MiB" "$(( reg16[i] / 1048576 ))" ""
    i=$((i + 1))
done
echo
echo "done."

#!/usr/bin/env bash
# Write benchmark: vhdx vs qemu-img / qemu-io (and cp), on the same data, in one run.
#
#   Scripts/bench-write.sh
#
# 1. raw -> VHDX conversion of a 4 GiB raw file with 50% random data: `vhdx convert` (default
#    32 MiB blocks, and --block-size 16M) vs `qemu-img convert -O vhdx` (auto: 16 MiB blocks)
#    vs `cp --sparse=always`, each timed with and without a `sync FILE` of its output.
# 2. Random 4 KiB writes (writes/s) through the engine (VHDXBench random-writes) vs qemu-io fed
#    the very same writes on stdin, into fresh dynamic images (32 MiB and 1 MiB blocks) and into
#    a fully allocated image (rewrite).
#
# Environment:
#   BENCH_SIZE_GIB     virtual size of every test image in GiB (integer, default 4)
#   BENCH_RUNS         runs per measurement, best is reported (default 3)
#   BENCH_WRITES       random 4 KiB writes per run in part 2 (default 20000)
#   BENCH_SEED         seed of the write sequence (default 1)
#   BENCH_FLUSH_EVERY  part 2: also flush every K writes, both tools (default 0: only at the end)
#   BENCH_SAMPLE       part 2: written offsets read back through qemu-io per image (default 200)
#   BENCH_SETTLE       seconds to wait (untimed) after the sync before each timed run (default 5)
#   BENCH_DIR          parent of the work directory (default /var/tmp); a fresh mktemp -d
#                      is made inside it and removed on exit
#   BENCH_SCRATCH      swift build --scratch-path (default: the package's .build)
#   BENCH_KEEP=1       keep the work directory
#
# All timings are wall clock, warm page cache (the source is read once beforehand; caches are
# not dropped). Before every timed run the previous output is deleted (or the image recreated)
# and `sync` is run, untimed, so no run pays for another run's dirty-page writeback; then the
# script waits BENCH_SETTLE seconds. On VMs with free page reporting (virtio-balloon; e.g.
# Firecracker's page_reporting_order=11) memory freed by the deleted output goes back to the host
# within ~2 s, and the next run's page-cache allocations fault it back in: without the pause a
# run's time depends on how long ago the previous output was deleted (4-18 s for one command).
# With it every run starts from the same state. On bare metal the pause changes nothing.
set -euo pipefail
export LC_ALL=C

SIZE_GIB=${BENCH_SIZE_GIB:-4}
RUNS=${BENCH_RUNS:-3}
WRITES=${BENCH_WRITES:-20000}
SEED=${BENCH_SEED:-1}
FLUSH_EVERY=${BENCH_FLUSH_EVERY:-0}
SAMPLE=${BENCH_SAMPLE:-200}
SETTLE=${BENCH_SETTLE:-5}
PARENT=${BENCH_DIR:-/var/tmp}

BENCH_NAME=bench-write
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
[[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_GIB must be a positive integer (got '$SIZE_GIB')"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $WRITES =~ ^[1-9][0-9]*$ ]] || die "BENCH_WRITES must be a positive integer (got '$WRITES')"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer (got '$SEED')"
[[ $FLUSH_EVERY =~ ^[0-9]+$ ]] || die "BENCH_FLUSH_EVERY must be a non-negative integer (got '$FLUSH_EVERY')"
[[ $SAMPLE =~ ^[1-9][0-9]*$ ]] || die "BENCH_SAMPLE must be a positive integer (got '$SAMPLE')"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "BENCH_SETTLE must be a non-negative integer (got '$SETTLE')"

bench_header "size=${SIZE_GIB} GiB, runs=${RUNS}, best run reported; random writes=${WRITES}, seed=${SEED}, flush-every=${FLUSH_EVERY}, read-back sample=${SAMPLE}, settle=${SETTLE} s" \
    BENCH_SIZE_GIB BENCH_RUNS BENCH_WRITES BENCH_SEED BENCH_FLUSH_EVERY BENCH_SAMPLE BENCH_SETTLE BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require qemu-img:qemu-utils qemu-io:qemu-utils /usr/bin/time:time
bench_build bench
echo "qemu-io:  $(qemu-io --version | head -n 1)"
echo "cp:       $(cp --version | head -n 1)"
bench_workdir "$PARENT"

# ---------------------------------------------------------------- helpers
SIZE=$((SIZE_GIB << 30))
# info_int FILE KEY: an integer field of `vhdx info --json` (first match; block-counts keys too).
info_int() { "$VHDX" info "$1" --json | sed -n "s/.*\"$2\": *\([0-9][0-9]*\).*/\1/p" | head -n 1; }
# expect_rc WANT WHAT CMD...: runs CMD, fails loudly unless its exit status is WANT.
expect_rc() {
    local want=$1 what=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    if ((rc != want)); then
        echo "!!!!!!!! VERIFY FAILED: $what: exit $rc, expected $want !!!!!!!!" >&2
        echo "   command: $*" >&2
        head -n 20 <<<"$out" | sed 's/^/   | /' >&2
        die "verification failed: $what"
    fi
    echo "  ok  $what"
}

# ---------------------------------------------------------------- test data
# The source: half random, half zeros, in the 4 MiB-region pattern of make_half_random (bench-lib.sh).

echo "== test data"
t0=$(now_us)
SRC=$W/src.raw
make_half_random "$SRC" "$SIZE"
t1=$(now_us)
awk -v us=$((t1 - t0)) -v r=$RANDOM_BYTES -v s=$SIZE -v a="$(du -B1 "$SRC" | cut -f1)" 'BEGIN {
    printf "src.raw: %d MiB virtual, %d MiB random (%.1f%%), %d MiB allocated, made in %.1f s\n",
           s / 1048576, r / 1048576, 100 * r / s, a / 1048576, us / 1e6 }'
sync
echo

# ================================================================ 1. raw -> VHDX convert
OUT_V=$W/out.vhdx
OUT_V16=$W/out16.vhdx
OUT_Q=$W/q.vhdx
OUT_C=$W/copy.raw
names=("vhdx convert (32 MiB blocks)"
       "vhdx convert --block-size 16M"
       "qemu-img convert -O vhdx (16M)"
       "cp --sparse=always")
cmds=("\"\$VHDX\" convert \"\$SRC\" \"\$OUT_V\""
      "\"\$VHDX\" convert --block-size 16M \"\$SRC\" \"\$OUT_V16\""
      "qemu-img convert -f raw -O vhdx \"\$SRC\" \"\$OUT_Q\""
      "cp --sparse=always \"\$SRC\" \"\$OUT_C\"")
outs=("$OUT_V" "$OUT_V16" "$OUT_Q" "$OUT_C")
N=${#names[@]}
REF_Q=2
REF_CP=3
declare -a best bestns rss all
for ((k = 0; k < N; k++)); do best[k]=0; bestns[k]=0; rss[k]=0; all[k]=""; done

# run_synced CMD OUT: CMD under /usr/bin/time, then `sync OUT` (fsync of the output file).
# Sets T_CMD_US (command alone), T_US (command + sync) and T_RSS (KiB).
run_synced() {
    local t0 t1 t2
    t0=$(now_us)
    eval "/usr/bin/time -f %M -o \"\$RSSF\" $1"
    t1=$(now_us)
    sync "$2"
    t2=$(now_us)
    T_CMD_US=$((t1 - t0))
    T_US=$((t2 - t0))
    T_RSS=$(tail -n 1 "$RSSF")
}

echo "== 1. convert raw -> VHDX: ${SIZE_GIB} GiB raw, 50% random data, best of $RUNS, warm cache, each followed by sync FILE"
echo "warm-up: cat src.raw > /dev/null (so every timing below is warm-cache; caches are not dropped)"
cat "$SRC" >/dev/null
# Rounds are interleaved (a b c d, a b c d, ...) so drift hits all tools alike.
for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < N; k++)); do
        rm -f -- "${outs[k]}"
        settle
        run_synced "${cmds[k]}" "${outs[k]}"
        all[k]+="$(fmt_s $T_US) "
        if ((best[k] == 0 || T_US < best[k])); then best[k]=$T_US; bestns[k]=$T_CMD_US; fi
        if ((T_RSS > rss[k])); then rss[k]=$T_RSS; fi
    done
done

printf '%-32s %9s %11s %8s %10s %7s %8s   %s\n' "tool" "s (sync)" "s (no sync)" "MiB/s" "x qemu-img" "x cp" "RSS MiB" "all runs, with sync (s)"
printf '%-32s %9s %11s %8s %10s %7s %8s   %s\n' "--------------------------------" "--------" "-----------" "-----" "----------" "----" "-------" "-----------------------"
for ((k = 0; k < N; k++)); do
    awk -v name="${names[k]}" -v us="${best[k]}" -v ns="${bestns[k]}" -v q="${best[REF_Q]}" -v c="${best[REF_CP]}" \
        -v v="$SIZE" -v rss="${rss[k]}" -v all="${all[k]}" 'BEGIN {
        printf "%-32s %9.3f %11.3f %8.0f %10.2f %7.2f %8.1f   %s\n", name, us / 1e6, ns / 1e6, (v / 1048576) / (us / 1e6),
               us / q, us / c, rss / 1024, all }'
done
echo "s (sync) = command + sync FILE of its output; s (no sync) = the command alone, in that same best run."
echo "Before each run: previous output deleted, sync, ${SETTLE} s pause (all untimed)."
echo "MiB/s = virtual size (${SIZE_GIB} GiB) / s (sync); x qemu-img, x cp = s (sync) / that tool's s (sync) (>1 = slower)."
echo "vhdx convert fdatasyncs its output (and fsyncs the directory after the rename) itself, so its sync adds ~nothing;"
echo "qemu-img's vhdx driver fdatasyncs around every BAT update (block allocation), cp never syncs."

echo "verify (last run's outputs):"
for f in "$OUT_V" "$OUT_V16"; do
    b=$(basename "$f")
    expect_rc 0 "vhdx compare src.raw $b" "$VHDX" compare "$SRC" "$f"
    expect_rc 0 "qemu-img compare src.raw $b" qemu-img compare -f raw -F vhdx "$SRC" "$f"
    expect_rc 0 "qemu-img check $b" qemu-img check -f vhdx "$f"
    expect_rc 0 "vhdx check $b" "$VHDX" check "$f"
done
expect_rc 0 "vhdx compare src.raw q.vhdx" "$VHDX" compare "$SRC" "$OUT_Q"
expect_rc 0 "vhdx check q.vhdx" "$VHDX" check "$OUT_Q"
expect_rc 0 "cmp src.raw copy.raw" cmp "$SRC" "$OUT_C"
bs_v=$(info_int "$OUT_V" block-size); bs_v16=$(info_int "$OUT_V16" block-size); bs_q=$(info_int "$OUT_Q" block-size)
((bs_v == 32 * MiB)) || die "out.vhdx has block size $bs_v, expected 32 MiB"
((bs_v16 == 16 * MiB)) || die "out16.vhdx has block size $bs_v16, expected 16 MiB"
echo "  ok  block sizes: out.vhdx $((bs_v / MiB)) MiB, out16.vhdx $((bs_v16 / MiB)) MiB, q.vhdx (qemu-img's choice) $((bs_q / MiB)) MiB"

printf '%-12s %10s %18s %12s %14s  %s\n' "file" "block MiB" "apparent bytes" "du MiB" "data blocks" "info blocks"
for f in "$SRC" "$OUT_V" "$OUT_V16" "$OUT_Q" "$OUT_C"; do
    b=$(basename "$f") bsz="-" blk="-"
    if [[ $f == *.vhdx ]]; then
        bsz=$(( $(info_int "$f" block-size) / MiB ))
        blk=$("$VHDX" info "$f" | sed -n 's/^blocks: //p')
    fi
    printf '%-12s %10s %18s %12s %14s  %s\n' "$b" "$bsz" "$(stat -c %s "$f")" "$(( $(du -B1 "$f" | cut -f1) / MiB ))" \
        "$([[ $f == *.vhdx ]] && info_int "$f" data || echo -)" "$blk"
done
if [[ ${BENCH_KEEP:-0} != 1 ]]; then rm -f -- "$OUT_V" "$OUT_V16" "$OUT_Q" "$OUT_C" "$SRC"; fi
echo

# ================================================================ 2. random 4 KiB writes
echo "== 2. random 4 KiB writes: ${WRITES} writes over ${SIZE_GIB} GiB, seed ${SEED}, best of $RUNS"
SCRIPT=$W/writes.qemu-io
"$BENCH" qemu-io-script --size "$SIZE" --count "$WRITES" --seed "$SEED" --flush-every "$FLUSH_EVERY" >"$SCRIPT"
nwrites=$(grep -c '^write ' "$SCRIPT" || true)
((nwrites == WRITES)) || die "qemu-io script has $nwrites writes, expected $WRITES"
distinct=$(awk '/^write/ {print $5}' "$SCRIPT" | sort -u | wc -l)
touched() { awk -v bs="$1" '/^write/ {print int($5 / bs)}' "$SCRIPT" | sort -u | wc -l; }
TOUCH32=$(touched $((32 * MiB)))
TOUCH1=$(touched $((1 * MiB)))
NBLK32=$(( (SIZE + 32 * MiB - 1) / (32 * MiB) ))
NBLK1=$(( (SIZE + MiB - 1) / MiB ))
echo "write plan: $WRITES writes, $distinct distinct 4 KiB offsets; they touch $TOUCH32 of $NBLK32 32 MiB blocks and $TOUCH1 of $NBLK1 1 MiB blocks"
"$BENCH" expected --size "$SIZE" --count "$WRITES" --seed "$SEED" --sample "$SAMPLE" >"$W/expected"

# Fully allocated source: every byte random, so every block of both images is allocated.
echo "making the fully allocated images (${SIZE_GIB} GiB of random data, 32 MiB blocks)..."
FULL=$W/full.raw
# (process substitution, not a pipe: the endless stream's SIGPIPE must not trip pipefail)
dd of="$FULL" bs=${REGION_MIB}M count=$((SIZE / REGION)) iflag=fullblock status=none < <(rand_stream 0f0e0d0c0b0a09080706050403020100)
(( $(stat -c %s "$FULL") == SIZE )) || die "full.raw is $(stat -c %s "$FULL") bytes, expected $SIZE"
V_FULL=$W/full-v.vhdx
Q_FULL=$W/full-q.vhdx
"$VHDX" convert "$FULL" "$V_FULL"
qemu-img convert -f raw -O vhdx -o subformat=dynamic,block_size=32M "$FULL" "$Q_FULL"
rm -f -- "$FULL"
for f in "$V_FULL" "$Q_FULL"; do
    d=$(info_int "$f" data)
    ((d == NBLK32)) || die "$(basename "$f"): $d data blocks, expected all $NBLK32"
done
sync

snames=("fresh dynamic, 32 MiB blocks" "fresh dynamic, 1 MiB blocks" "full, 32 MiB blocks (rewrite)")
vimg=("$W/a32-v.vhdx" "$W/a1-v.vhdx" "$V_FULL")
qimg=("$W/a32-q.vhdx" "$W/a1-q.vhdx" "$Q_FULL")
# How each image is (re)made before each run; empty: reused as it is (a rewrite leaves a fully
# allocated image fully allocated, and the same writes cost the same again).
vmake=("\"\$VHDX\" create --force \"\${vimg[0]}\" ${SIZE_GIB}G"
       "\"\$VHDX\" create --force --block-size 1M \"\${vimg[1]}\" ${SIZE_GIB}G"
       "")
qmake=("qemu-img create -q -f vhdx -o subformat=dynamic,block_size=32M \"\${qimg[0]}\" ${SIZE_GIB}G"
       "qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M \"\${qimg[1]}\" ${SIZE_GIB}G"
       "")
allocs=("$TOUCH32" "$TOUCH1" 0)
S=${#snames[@]}
declare -a vbest qbest vinner vflush vall qall
for ((k = 0; k < S; k++)); do vbest[k]=0; qbest[k]=0; vinner[k]=""; vflush[k]=""; vall[k]=""; qall[k]=""; done

for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < S; k++)); do
        # vhdx: the engine through VHDXBench (open, writes, flush, close), whole process timed.
        if [[ -n ${vmake[k]} ]]; then rm -f -- "${vimg[k]}"; eval "${vmake[k]}"; fi
        settle
        t0=$(now_us)
        vout=$("$BENCH" random-writes "${vimg[k]}" --count "$WRITES" --seed "$SEED" --flush-every "$FLUSH_EVERY") \
            || die "VHDXBench random-writes failed on ${vimg[k]}"
        t1=$(now_us)
        us=$((t1 - t0))
        vall[k]+="$(fmt_s $us) "
        if ((vbest[k] == 0 || us < vbest[k])); then
            vbest[k]=$us; vinner[k]=$(kv total_s "$vout"); vflush[k]=$(kv flush_close_s "$vout")
        fi
        # qemu-io: the same writes as one command script on stdin, whole process timed.
        if [[ -n ${qmake[k]} ]]; then rm -f -- "${qimg[k]}"; eval "${qmake[k]}"; fi
        settle
        t0=$(now_us)
        qrc=0
        qemu-io -t writeback -f vhdx "${qimg[k]}" <"$SCRIPT" >"$W/qemu-io.out" 2>&1 || qrc=$?
        t1=$(now_us)
        # Anything but prompts (an error message) is a failure, whatever the exit status.
        if ((qrc != 0)) || [[ -n $(sed 's/qemu-io> //g' "$W/qemu-io.out" | tr -d ' \n') ]]; then
            sed 's/qemu-io> //g' "$W/qemu-io.out" | head -n 20 >&2
            die "qemu-io failed on ${qimg[k]} (exit $qrc)"
        fi
        us=$((t1 - t0))
        qall[k]+="$(fmt_s $us) "
        if ((qbest[k] == 0 || us < qbest[k])); then qbest[k]=$us; fi
    done
done

printf '%-30s %7s %8s %9s %9s %9s %10s %9s %9s\n' "scenario" "allocs" "vhdx s" "vhdx w/s" "qemu-io s" "qemu w/s" "vhdx/qemu" "vhdx i.s" "v flush"
printf '%-30s %7s %8s %9s %9s %9s %10s %9s %9s\n' "------------------------------" "------" "------" "--------" "---------" "--------" "---------" "--------" "-------"
for ((k = 0; k < S; k++)); do
    awk -v name="${snames[k]}" -v a="${allocs[k]}" -v v="${vbest[k]}" -v q="${qbest[k]}" -v n="$WRITES" \
        -v inner="${vinner[k]}" -v fl="${vflush[k]}" 'BEGIN {
        printf "%-30s %7d %8.3f %9.0f %9.3f %9.0f %10.2f %9.3f %9.3f\n", name, a, v / 1e6, n / (v / 1e6), q / 1e6, n / (q / 1e6),
               (n / (v / 1e6)) / (n / (q / 1e6)), inner, fl }'
done
for ((k = 0; k < S; k++)); do
    printf '  all runs (s), %-30s vhdx: %s| qemu-io: %s\n' "${snames[k]}:" "${vall[k]}" "${qall[k]}"
done
echo "s = best wall time of the whole process (open, ${WRITES} writes, final flush, close); w/s = ${WRITES} / s."
echo "Before each run: fresh images recreated (full images reused), sync, ${SETTLE} s pause (all untimed)."
echo "vhdx/qemu = vhdx writes/s / qemu-io writes/s (>1 = vhdx faster). allocs = blocks the writes allocate."
echo "vhdx i.s = VHDXBench's own open-to-close time (CLOCK_MONOTONIC), v flush = its final flush + close."
echo "qemu-io runs with -t writeback: its default (writethrough) fdatasyncs after every write, while vhdx flushes"
echo "only around metadata (BAT) commits and at the end; both flush at the end, so the data is durable either way."
echo "Each write fills 4 KiB with one non-zero byte (1..255 from the seeded RNG), the same in both tools."

echo "verify (last run's images):"
for ((k = 0; k < S; k++)); do
    v=${vimg[k]} q=${qimg[k]} bv=$(basename "${vimg[k]}") bq=$(basename "${qimg[k]}")
    for f in "$v" "$q"; do
        expect_rc 0 "vhdx check $(basename "$f")" "$VHDX" check "$f"
        expect_rc 0 "qemu-img check $(basename "$f")" qemu-img check -f vhdx "$f"
    done
    expect_rc 0 "qemu-img compare $bv $bq (same writes, same start: identical)" qemu-img compare -f vhdx -F vhdx "$v" "$q"
    want=${allocs[k]}; ((want > 0)) || want=$NBLK32
    dv=$(info_int "$v" data); dq=$(info_int "$q" data)
    ((dv == want && dq == want)) || die "${snames[k]}: data blocks vhdx $dv, qemu $dq, expected $want"
    echo "  ok  data blocks: $bv $dv, $bq $dq (expected $want)"
    # Read back a sample of written offsets through qemu's driver.
    reads=()
    while read -r off byte; do reads+=(-c "read -P $byte $off 4k"); done <"$W/expected"
    nread=$((${#reads[@]} / 2))
    rrc=0
    qemu-io -r -f vhdx "${reads[@]}" "$v" >"$W/readback.out" 2>&1 || rrc=$?
    ok=$(grep -c '^read 4096/4096 bytes' "$W/readback.out" || true)
    bad=$(grep -c 'Pattern verification failed' "$W/readback.out" || true)
    if ((rrc != 0 || ok != nread || bad != 0)); then
        grep -m 5 -B1 'Pattern verification failed' "$W/readback.out" >&2 || true
        die "$bv: qemu-io read-back: exit $rrc, $ok of $nread reads, $bad pattern mismatches"
    fi
    echo "  ok  qemu-io -r read-back of $nread written offsets of $bv (read -P byte off 4k)"
done
# Negative control: the read-back must be able to fail.
read -r off byte <"$W/expected"
neg=$(qemu-io -r -f vhdx -c "read -P $(( byte % 255 + 1 )) $off 4k" "${vimg[0]}" 2>&1) || true
if grep -q 'Pattern verification failed' <<<"$neg"; then
    echo "  ok  negative control: a wrong pattern is reported as a mismatch"
else
    die "negative control: reading offset $off with a wrong pattern did not fail"
fi
echo
echo "done."

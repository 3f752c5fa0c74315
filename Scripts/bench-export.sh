#!/usr/bin/env bash
# Export benchmark: vhdx export / restore vs cp --sparse=always, pigz and gzip, on two tracked
# disks, in one run.
#
#   Scripts/bench-export.sh
#
# The disks (each BENCH_SIZE virtual; `vhdx create`, `vhdx track enable`, then filled with
# `vhdx write --input`, untimed):
#   A "random": the disk in 64 MiB strides; the first 32 MiB of each stride random (AES-CTR
#      keystream with a fixed key and IV, so the same bytes every run; /dev/urandom when openssl
#      is missing), the second 32 MiB never written. 50% data; with the default 32 MiB blocks
#      every other block is allocated and full.
#   B "usr": `tar -cf - /usr`, cut at 90% of the disk (the whole tar when smaller), written
#      from offset 0. Compressible real-world data (binaries, libraries, text).
#
# Per disk, BENCH_RUNS rounds, each running every row once in this order (median reported):
#   cp --sparse=always SRC.vhdx copy                 the reference
#   cp --sparse=always + sync -d copy               like-for-like reference: every vhdx export
#                                                    and restore fsyncs its output before it returns
#   vhdx export SRC.vhdx full.stream --json         full export, stream
#   vhdx export SRC.vhdx full.vhdx                  full export, VHDX image
#   vhdx restore r.vhdx full.stream                 restore, stream -> VHDX
#   vhdx restore r.raw full.stream                  restore, stream -> raw (sparse)
#   disk B only:
#   VHDX_THREADS=1 vhdx export SRC.vhdx t1.stream   one worker (the compression speed-up)
#   pigz -1 -p NPROC < SRC.vhdx > out.gz, and the same + sync -d; gzip -1 < SRC.vhdx > out.gz
# Then 1% of the disk is rewritten (round(BENCH_SIZE / 100 MiB) pieces of 1 MiB of random data;
# the disk cut into that many equal strides, one piece at a pseudo-random MiB of each, from
# BENCH_SEED), and `vhdx export SRC.vhdx inc.stream --base full.stream` timed, BENCH_RUNS runs.
#
# Correctness (untimed; any failure ends the run with an error): `vhdx verify` of the last
# round's restored r.vhdx and r.raw against full.stream; `vhdx restore` of full + incremental
# to a .vhdx, verified against both streams; and the source disk itself verified against both
# streams (so the exports are the disk, not just self-consistent).
#
# Environment:
#   BENCH_SIZE     virtual size of each disk (K/M/G/T suffix, binary; a multiple of 64 MiB;
#                  default 4G)
#   BENCH_RUNS     rounds per measurement; the median is reported, all runs printed (default 1)
#   BENCH_SEED     seed of the 1% change offsets (default 1)
#   BENCH_SETTLE   seconds to wait (untimed) after the sync before each timed run (default 2)
#   BENCH_DIR      parent of the work directory (default /tmp); a fresh mktemp -d is made
#                  inside it and removed on exit
#   BENCH_SCRATCH  swift build --scratch-path (default: the package's .build)
#   BENCH_KEEP=1   keep the work directory
#
# Timings are wall clock of whole processes (process start, the consistent-point seal on the
# source, and the final fsync included). Page cache: before every timed run its input (the
# VHDX for cp, pigz, gzip and export; the stream for restore) is read with cat > /dev/null, so
# every tool reads from a warm cache; caches are never dropped. Before that, the run's previous
# output is deleted and `sync` is run, then BENCH_SETTLE seconds of pause (all untimed), so no
# run pays for another's writeback. Peak RSS is /usr/bin/time -f %M of the same runs. No
# thresholds are enforced: targets are printed with PASS/MISS next to the figures.
set -euo pipefail
export LC_ALL=C

SIZE_ARG=${BENCH_SIZE:-4G}
RUNS=${BENCH_RUNS:-1}
SEED=${BENCH_SEED:-1}
SETTLE=${BENCH_SETTLE:-2}
PARENT=${BENCH_DIR:-/tmp}

BENCH_NAME=bench-export
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
[[ $SIZE_ARG =~ ^([1-9][0-9]*)([KkMmGgTt]?)$ ]] || die "BENCH_SIZE must be a number with an optional K/M/G/T suffix (got '$SIZE_ARG')"
case ${BASH_REMATCH[2]} in
    [Kk]) SIZE=$((BASH_REMATCH[1] << 10)) ;;
    [Mm]) SIZE=$((BASH_REMATCH[1] << 20)) ;;
    [Gg]) SIZE=$((BASH_REMATCH[1] << 30)) ;;
    [Tt]) SIZE=$((BASH_REMATCH[1] << 40)) ;;
    *) SIZE=${BASH_REMATCH[1]} ;;
esac
((SIZE % (64 * MiB) == 0)) || die "BENCH_SIZE must be a multiple of 64 MiB (got $SIZE bytes)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer (got '$SEED')"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "BENCH_SETTLE must be a non-negative integer (got '$SETTLE')"
NPROC=$(nproc)

bench_header "disks $((SIZE / MiB)) MiB each (A: 50% random, B: tar of /usr), runs=${RUNS} (median reported), seed=${SEED}, settle=${SETTLE} s, warm cache (input read with cat before every timed run), pigz -p ${NPROC}" \
    BENCH_SIZE BENCH_RUNS BENCH_SEED BENCH_SETTLE BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require /usr/bin/time:time pigz:pigz gzip:gzip tar:tar
bench_build
echo "pigz:     $(pigz --version 2>&1 | head -n 1); gzip: $(gzip --version | head -n 1); cp: $(cp --version | head -n 1)"

# Room: one disk at a time; its source, the full stream, the last restore outputs, the
# incremental's restore and one more output at once, at most about 5x the disk's data.
need_gib=$(( (5 * SIZE + GiB - 1) / GiB + 1 ))
avail_gib=$(df -P -B1G "$PARENT" | awk 'NR==2 {print $4}')
echo "space:    ${avail_gib} GiB free under $PARENT (df), about ${need_gib} GiB needed"
((avail_gib >= need_gib)) || die "not enough free space under $PARENT: ${avail_gib} GiB, need about ${need_gib} GiB (set BENCH_DIR)"
bench_workdir "$PARENT"
if [[ $(df -T "$W" | awk 'NR==2 {print $2}') == tmpfs ]]; then
    echo "note: the work directory is on tmpfs: every output lives in memory, fsync costs nothing"
fi
echo

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
alloc() { du -B1 "$1" | cut -f1; }

# ---------------------------------------------------------------- rows
# A disk's measurements: add_row ID LABEL INPUT OUTPUT KEEP CMD. INPUT is read with cat before
# each run (warm cache), OUTPUT deleted before it (and after it unless KEEP=1), CMD a shell
# string (eval'd; it may use SRC and the other globals).
declare -a RID RLABEL RIN ROUT RKEEP RCMD
declare -A T RSS OUTB OUTA
clear_rows() { RID=(); RLABEL=(); RIN=(); ROUT=(); RKEEP=(); RCMD=(); }
add_row() {
    RID+=("$1"); RLABEL+=("$2"); RIN+=("$3"); ROUT+=("$4"); RKEEP+=("$5"); RCMD+=("$6")
}
# run_rows: BENCH_RUNS rounds of every row in order; T[disk,id] = the runs (s), RSS[disk,id] =
# max peak RSS (KiB), OUTB[disk,id] / OUTA[disk,id] = the last run's output size, apparent /
# allocated (bytes).
run_rows() {
    local r k id out
    for ((r = 1; r <= RUNS; r++)); do
        for ((k = 0; k < ${#RID[@]}; k++)); do
            id=$DISK,${RID[k]}
            out=${ROUT[k]}
            rm -f -- "$out"
            settle
            cat "${RIN[k]}" >/dev/null
            timed "${RCMD[k]}" || die "${RLABEL[k]} failed (exit $?)"
            T[$id]+="$(fmt_s "$T_US") "
            if ((T_RSS > ${RSS[$id]:-0})); then RSS[$id]=$T_RSS; fi
            OUTB[$id]=$(stat -c %s "$out")
            OUTA[$id]=$(alloc "$out")
            ((${RKEEP[k]})) || rm -f -- "$out"
        done
    done
}
# timed CMD: like run_timed (bench-lib.sh), but returns CMD's exit status.
timed() {
    local t0 t1 rc=0
    t0=$(now_us)
    eval "/usr/bin/time -f %M -o \"\$RSSF\" $1" || rc=$?
    t1=$(now_us)
    T_US=$((t1 - t0))
    T_RSS=$(tail -n 1 "$RSSF")
    return $rc
}
med() { # disk,id -> median seconds
    # shellcheck disable=SC2086
    median ${T[$1]}
}

# print_table: every row of the disk: median s, MiB/s of the disk's data, output MiB (allocated), x cp,
# x (cp + sync -d), peak RSS, all runs.
print_table() {
    local k id cp cps d
    cp=$(med "$DISK,cp"); cps=$(med "$DISK,cps")
    printf '%-44s %8s %9s %9s %7s %9s %8s   %s\n' "operation" "seconds" "MiB/s" "out MiB" "x cp" "x cp+sync" "RSS MiB" "all runs (s)"
    printf '%-44s %8s %9s %9s %7s %9s %8s   %s\n' "--------------------------------------------" "-------" "-----" "-------" "----" "---------" "-------" "------------"
    for ((k = 0; k < ${#RID[@]}; k++)); do
        id=$DISK,${RID[k]}
        d=$DATA
        if [[ ${RID[k]} == inc ]]; then d=${INC_CHANGED[$DISK]}; fi
        awk -v n="${RLABEL[k]}" -v s="$(med "$id")" -v d="$d" -v o="${OUTA[$id]}" -v c="$cp" -v cs="$cps" -v rss="${RSS[$id]}" -v all="${T[$id]}" 'BEGIN {
            printf "%-44s %8.3f %9.0f %9.1f %7.2f %9.2f %8.1f   %s\n", n, s, d / 1048576 / s, o / 1048576, s / c, s / cs, rss / 1024, all }'
    done
}

# make_tracked FILE: a fresh dynamic VHDX of SIZE with change tracking on.
make_tracked() {
    "$VHDX" create "$1" "$SIZE" >/dev/null
    "$VHDX" track enable "$1" >/dev/null 2>&1 || die "track enable $1 failed"
}

# change_one_percent FILE: round(SIZE / 100 MiB) (at least 1) distinct 1 MiB pieces of random
# data, one per equal stride of the disk at a pseudo-random MiB of it (an LCG from BENCH_SEED).
# Sets CHANGED (bytes).
change_one_percent() {
    local n stride x k at
    n=$(( (SIZE + 50 * MiB) / (100 * MiB) )); ((n >= 1)) || n=1
    stride=$(( SIZE / MiB / n ))
    x=$SEED
    exec 5< <(rand_stream c${DISK_IV}000000000000000000000000000000)
    for ((k = 0; k < n; k++)); do
        x=$(( (x * 1103515245 + 12345) % 2147483648 ))
        at=$(( (k * stride + (x >> 8) % stride) * MiB ))
        "$VHDX" write "$1" --offset "$at" --input - --length "$MiB" <&5 || die "vhdx write at $at failed"
    done
    exec 5<&-
    CHANGED=$((n * MiB))
}

# verify IMAGE STREAM...: vhdx verify, loudly.
verify() {
    local image=$1 out
    shift
    if ! out=$("$VHDX" verify "$image" "$@" 2>&1); then
        echo "!!!!!!!! VERIFY FAILED: $(basename "$image") against ${*##*/} !!!!!!!!" >&2
        echo "$out" >&2
        die "vhdx verify failed"
    fi
    echo "  ok  $out" | sed "s|$W/||g"
}

# ---------------------------------------------------------------- one disk
# bench_disk NAME: runs the rows, the incremental and the checks on $W/$NAME.vhdx (already
# filled). Sets DATA (the disk's data bytes, from the full export's summary).
bench_disk() {
    DISK=$1
    SRC=$W/$DISK.vhdx
    FULL=$W/full.stream
    INC=$W/inc.stream
    local json
    clear_rows
    add_row cp   "cp --sparse=always"                   "$SRC" "$W/copy.vhdx" 0 'cp --sparse=always "$SRC" "$W/copy.vhdx"'
    add_row cps  "cp --sparse=always + sync -d"         "$SRC" "$W/copy.vhdx" 0 'sh -c '\''cp --sparse=always "$1" "$2" && sync -d "$2"'\'' sh "$SRC" "$W/copy.vhdx"'
    if [[ $DISK == usr ]]; then
        add_row t1 "vhdx export -> stream, VHDX_THREADS=1" "$SRC" "$W/t1.stream" 0 'env VHDX_THREADS=1 "$VHDX" export "$SRC" "$W/t1.stream" --json >"$W/t1.json"'
        add_row pigz  "pigz -1 -p $NPROC"               "$SRC" "$W/out.gz" 0 'pigz -1 -p "$NPROC" <"$SRC" >"$W/out.gz"'
        add_row pigzs "pigz -1 -p $NPROC + sync -d"     "$SRC" "$W/out.gz" 0 'sh -c '\''pigz -1 -p "$1" <"$2" >"$3" && sync -d "$3"'\'' sh "$NPROC" "$SRC" "$W/out.gz"'
        add_row gzip  "gzip -1"                         "$SRC" "$W/out.gz" 0 'gzip -1 <"$SRC" >"$W/out.gz"'
    fi
    add_row exp  "vhdx export -> stream"                "$SRC" "$FULL" 1 '"$VHDX" export "$SRC" "$FULL" --json >"$W/full.json"'
    add_row expv "vhdx export -> .vhdx"                 "$SRC" "$W/full.vhdx" 0 '"$VHDX" export "$SRC" "$W/full.vhdx" >/dev/null'
    add_row rv   "vhdx restore stream -> .vhdx"         "$FULL" "$W/r.vhdx" 1 '"$VHDX" restore "$W/r.vhdx" "$FULL" >/dev/null'
    add_row rr   "vhdx restore stream -> raw"           "$FULL" "$W/r.raw" 1 '"$VHDX" restore "$W/r.raw" "$FULL" >/dev/null'
    run_rows
    json=$(cat "$W/full.json")
    DATA=$(json_int data-bytes <<<"$json")
    STREAMB=$(json_int written-bytes <<<"$json")
    ((STREAMB == ${OUTB[$DISK,exp]})) || die "export --json says $STREAMB bytes written, the stream file has ${OUTB[$DISK,exp]}"

    # The incremental: 1% changed after the last round's full stream (its change ID is the base).
    change_one_percent "$SRC"
    local rows_id=("${RID[@]}") rows_label=("${RLABEL[@]}")
    clear_rows
    add_row inc "vhdx export -> stream, incremental (1%)" "$SRC" "$INC" 1 '"$VHDX" export "$SRC" "$INC" --base "$FULL" --json >"$W/inc.json"'
    run_rows
    json=$(cat "$W/inc.json")
    INC_CHANGED[$DISK]=$(json_int changed-bytes <<<"$json")
    ((${INC_CHANGED[$DISK]} >= CHANGED)) || die "the incremental carries ${INC_CHANGED[$DISK]} changed bytes, fewer than the $CHANGED written"
    RID=("${rows_id[@]}" inc); RLABEL=("${rows_label[@]}" "vhdx export -> stream, incremental (1%)")

    echo "== disk $DISK: $(mib "$SIZE") MiB virtual, $(mib "$DATA") MiB data ($(awk -v d="$DATA" -v s="$SIZE" 'BEGIN { printf "%.1f", 100 * d / s }')%), VHDX file $(mib "$(stat -c %s "$SRC")") MiB ($(mib "$(alloc "$SRC")") MiB allocated); median of $RUNS"
    echo "$DISK_DESC"
    print_table
    echo "MiB/s = the disk's data ($(mib "$DATA") MiB) / seconds (the incremental's: the data it carries); out MiB = output size"
    echo "(allocated: the raw restore is sparse); x cp, x cp+sync = seconds / that row's seconds (>1 = slower). Stream: $(mib "$STREAMB") MiB = $(awk -v a="$STREAMB" -v d="$DATA" 'BEGIN { printf "%.1f", 100 * a / d }')% of the data."
    echo "Incremental: $(mib "$CHANGED") MiB rewritten in 1 MiB pieces; it carries $(mib "${INC_CHANGED[$DISK]}") MiB ($(mib "$(stat -c %s "$INC")") MiB stream), = $(awk -v i="$(med "$DISK,inc")" -v f="$(med "$DISK,exp")" 'BEGIN { printf "%.1f", 100 * i / f }')% of the full stream export's time."

    # Checks.
    echo "checks (vhdx verify, untimed):"
    verify "$W/r.vhdx" "$FULL"
    verify "$W/r.raw" "$FULL"
    rm -f -- "$W/r.vhdx" "$W/r.raw"
    "$VHDX" restore "$W/ri.vhdx" "$FULL" "$INC" >/dev/null || die "restore of full + incremental failed"
    verify "$W/ri.vhdx" "$FULL" "$INC"
    rm -f -- "$W/ri.vhdx"
    verify "$SRC" "$FULL" "$INC"
    rm -f -- "$W"/*.stream "$W"/*.json "$SRC"
    echo
}

declare -A INC_CHANGED

# ---------------------------------------------------------------- disk A: random
echo "== making the disks (untimed)"
t0=$(now_us)
make_tracked "$W/random.vhdx"
exec 4< <(rand_stream 00000000000000000000000000000000)
for ((at = 0; at < SIZE; at += 64 * MiB)); do
    "$VHDX" write "$W/random.vhdx" --offset "$at" --input - --length $((32 * MiB)) <&4 || die "vhdx write at $at failed"
done
exec 4<&-
t1=$(now_us)
echo "random: $((SIZE / (64 * MiB))) x 32 MiB random at every 64 MiB, $(mib $((SIZE / 2))) MiB, in $(fmt_s $((t1 - t0))) s"
DISK_DESC="(32 MiB random, 32 MiB never written, repeated; AES-CTR keystream: incompressible, stored raw after the probe)"
DISK_IV=1
bench_disk random

# ---------------------------------------------------------------- disk B: usr
t0=$(now_us)
make_tracked "$W/usr.vhdx"
{ tar -cf - /usr 2>/dev/null || true; } | head -c $((SIZE / 10 * 9)) >"$W/usr.tar"
TAR_BYTES=$(stat -c %s "$W/usr.tar")
"$VHDX" write "$W/usr.vhdx" --offset 0 --input "$W/usr.tar" || die "vhdx write of the tar failed"
rm -f -- "$W/usr.tar"
t1=$(now_us)
echo "usr: $(mib "$TAR_BYTES") MiB of tar -cf - /usr ($(du -sh /usr 2>/dev/null | cut -f1) on disk) at offset 0, in $(fmt_s $((t1 - t0))) s"
DISK_DESC="(tar -cf - /usr, cut at 90% of the disk: $(mib "$TAR_BYTES") MiB from offset 0)"
DISK_IV=2
bench_disk usr

# ---------------------------------------------------------------- summary
# row FIGURE VALUE_PLAIN VALUE_SYNC TARGET_OP TARGET: a ratio against the plain reference and
# the like-for-like one (reference + sync -d), each with PASS/MISS; "-" leaves a column empty.
verdict() { [[ $1 == - ]] && echo "" || awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? (v <= t) : (v < t); print ok ? "PASS" : "MISS" }'; }
srow() {
    printf '%-58s %10s %5s %10s %5s  %s %s\n' "$1" "$2" "$(verdict "$2" "$4" "$5")" "$3" "$(verdict "$3" "$4" "$5")" "$4" "$5"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "== summary (medians of $RUNS run(s); ratios are vhdx / reference, lower is better)"
printf '%-58s %10s %5s %10s %5s  %s\n' "figure" "vs plain" "" "vs +sync" "" "target"
printf '%-58s %10s %5s %10s %5s  %s\n' "----------------------------------------------------------" "--------" "" "--------" "" "------"
srow "1. full export -> stream / cp, random disk" "$(ratio "$(med random,exp)" "$(med random,cp)")" "$(ratio "$(med random,exp)" "$(med random,cps)")" "<=" 1.2
srow "   (same, usr disk)" "$(ratio "$(med usr,exp)" "$(med usr,cp)")" "$(ratio "$(med usr,exp)" "$(med usr,cps)")" "<=" 1.2
srow "2. usr: stream size / pigz -1 size" "$(ratio "${OUTB[usr,exp]}" "${OUTB[usr,pigz]}")" - "<=" 1.05
srow "   usr: full export -> stream time / pigz -1 -p $NPROC time" "$(ratio "$(med usr,exp)" "$(med usr,pigz)")" "$(ratio "$(med usr,exp)" "$(med usr,pigzs)")" "<=" 1.0
printf '   %-55s %s\n' "usr: for reference, gzip -1:" "$(med usr,gzip) s, $(mib "${OUTB[usr,gzip]}") MiB (stream $(med usr,exp) s, $(mib "${OUTB[usr,exp]}") MiB; pigz $(med usr,pigz) s, $(mib "${OUTB[usr,pigz]}") MiB)"
srow "3. full export -> .vhdx / cp, random disk" "$(ratio "$(med random,expv)" "$(med random,cp)")" "$(ratio "$(med random,expv)" "$(med random,cps)")" "<=" 1.1
srow "   (same, usr disk)" "$(ratio "$(med usr,expv)" "$(med usr,cp)")" "$(ratio "$(med usr,expv)" "$(med usr,cps)")" "<=" 1.1
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", 100 * a / b }'; }
srow "4. incremental (1% changed) time, % of full stream, random" "$(pct "$(med random,inc)" "$(med random,exp)")" - "<=" 3
srow "   (same, usr disk)" "$(pct "$(med usr,inc)" "$(med usr,exp)")" - "<=" 3
srow "5. restore stream -> .vhdx / cp, random disk" "$(ratio "$(med random,rv)" "$(med random,cp)")" "$(ratio "$(med random,rv)" "$(med random,cps)")" "<=" 1.1
srow "   restore stream -> raw / cp, random disk" "$(ratio "$(med random,rr)" "$(med random,cp)")" "$(ratio "$(med random,rr)" "$(med random,cps)")" "<=" 1.1
srow "   restore stream -> .vhdx / cp, usr disk" "$(ratio "$(med usr,rv)" "$(med usr,cp)")" "$(ratio "$(med usr,rv)" "$(med usr,cps)")" "<=" 1.1
srow "   restore stream -> raw / cp, usr disk" "$(ratio "$(med usr,rr)" "$(med usr,cp)")" "$(ratio "$(med usr,rr)" "$(med usr,cps)")" "<=" 1.1
printf '%-58s %10s %5s %10s %5s  %s\n' "6. compression speed-up, usr, VHDX_THREADS=1 / all ($NPROC)" "$(ratio "$(med usr,t1)" "$(med usr,exp)")x" "" "" "" "(ideal ${NPROC}x; no target)"
max_rss() { local m=0 k; for k in "$@"; do if ((${RSS[$k]} > m)); then m=${RSS[$k]}; fi; done; mib $((m * 1024)); }
srow "7. peak RSS, export (every export above), MiB" "$(max_rss random,exp random,expv random,inc usr,exp usr,expv usr,inc usr,t1)" - "<" 128
srow "   peak RSS, restore (every timed restore), MiB" "$(max_rss random,rv random,rr usr,rv usr,rr)" - "<" 128
echo "vs plain = against the reference as is; vs +sync = against the reference followed by sync -d of its"
echo "output (like-for-like: vhdx export and restore fsync their output, cp and pigz do not). Restores"
echo "are compared with cp of the source VHDX. All checks (vhdx verify) passed."
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg) (at the start: see machine:, above)"
echo
echo "done."

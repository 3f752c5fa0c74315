# Helpers shared by the Scripts/bench-*.sh scripts; sourced, never run. Each script sets
# BENCH_NAME (its name in messages and the work directory) before sourcing this file.
#
# What it sets: ROOT (the package), SCRATCH (swift build --scratch-path, from BENCH_SCRATCH,
# default $ROOT/.build), VHDX (the release `vhdx`), BENCH (the release VHDXBench, built from
# the separate Scripts/Benchmarks/ package into $SCRATCH/benchmarks), MiB, GiB.
# shellcheck shell=bash

: "${BENCH_NAME:?set BENCH_NAME before sourcing bench-lib.sh}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${BENCH_SCRATCH:-$ROOT/.build}
[[ $SCRATCH == /* ]] || SCRATCH=$ROOT/$SCRATCH
VHDX=$SCRATCH/release/vhdx
BENCH=$SCRATCH/benchmarks/release/VHDXBench
MiB=1048576
GiB=1073741824

die() { echo "$BENCH_NAME: error: $*" >&2; exit 1; }

# bench_header "SETTINGS" VAR...: the run's command line (with the VARs that are set), date,
# machine and settings, so every printed table says what produced it.
bench_header() {
    local settings=$1 v envs="" cmdline cpu_model mem_gib
    shift
    echo "== $BENCH_NAME"
    cmdline="$(printf '%q ' "$0" "${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}")"
    for v in "$@"; do
        if [[ -n ${!v:-} ]]; then envs+="$v=$(printf '%q' "${!v}") "; fi
    done
    echo "command:  ${envs}${cmdline% }"
    echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo 2>/dev/null || true)
    echo "machine:  nproc=$(nproc), cpu=\"${cpu_model:-unknown}\", mem=${mem_gib:-?} GiB, kernel=$(uname -r), load=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings: $settings"
    echo
}

# bench_require COMMAND:PACKAGE...: installs (apt-get) the packages of missing commands, then
# fails unless every command is there. A COMMAND starting with / is a path that must be executable.
bench_require() {
    local pair cmd need=() sudo=""
    have() { if [[ $1 == /* ]]; then [[ -x $1 ]]; else command -v "$1" >/dev/null 2>&1; fi; }
    for pair in "$@"; do
        have "${pair%%:*}" || need+=("${pair#*:}")
    done
    if ((${#need[@]})); then
        mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
        if [[ $(id -u) -ne 0 ]]; then command -v sudo >/dev/null 2>&1 && sudo=sudo || die "need root or sudo to install: ${need[*]}"; fi
        echo "installing: ${need[*]}"
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
    fi
    for pair in "$@"; do
        cmd=${pair%%:*}
        have "$cmd" || die "$cmd still missing"
    done
}

# bench_build [bench]: builds the release `vhdx` (and, with `bench`, VHDXBench from the
# Scripts/Benchmarks/ package) and prints the build time and tool versions.
bench_build() {
    local t0 t1 log
    echo "== build"
    t0=${EPOCHREALTIME/[.,]/}
    if ! log=$(cd "$ROOT" && swift build -c release --product vhdx --scratch-path "$SCRATCH" 2>&1); then
        echo "$log" >&2
        die "swift build -c release --product vhdx failed"
    fi
    [[ -x $VHDX ]] || die "no binary at $VHDX"
    if [[ ${1:-} == bench ]]; then
        if ! log=$(swift build -c release --package-path "$ROOT/Scripts/Benchmarks" --scratch-path "$SCRATCH/benchmarks" 2>&1); then
            echo "$log" >&2
            die "swift build -c release --package-path Scripts/Benchmarks failed"
        fi
        [[ -x $BENCH ]] || die "no binary at $BENCH"
    fi
    tail -n 1 <<<"$log"
    t1=${EPOCHREALTIME/[.,]/}
    awk -v us=$((t1 - t0)) 'BEGIN { printf "build time: %.1f s\n", us / 1e6 }'
    echo "vhdx:     $VHDX"
    if [[ ${1:-} == bench ]]; then echo "bench:    $BENCH"; fi
    if command -v qemu-img >/dev/null 2>&1; then echo "qemu-img: $(qemu-img --version | head -n 1)"; fi
    echo "swift:    $(swift --version 2>&1 | head -n 1)"
    echo
}

# bench_workdir PARENT: W = a fresh directory under PARENT, removed on exit unless BENCH_KEEP=1;
# RSSF = where run_timed's /usr/bin/time writes.
bench_workdir() {
    mkdir -p "$1"
    W=$(mktemp -d "$1/vhdx-$BENCH_NAME.XXXXXX")
    RSSF=$W/.rss
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    echo "work dir: $W ($(df -T "$W" | awk 'NR==2 {print $2 " on " $1}'))"
}
bench_cleanup() {
    local rc=$?
    if [[ -n ${BENCH_ON_EXIT:-} ]]; then eval "$BENCH_ON_EXIT" || true; fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "work dir kept: $W"
    else
        rm -rf -- "$W"
    fi
    exit $rc
}

# rand_stream IV (32 hex digits): deterministic, fast pseudo-random bytes (AES-CTR keystream);
# /dev/urandom as fallback.
rand_stream() {
    if command -v openssl >/dev/null 2>&1; then
        openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv "$1" </dev/zero 2>/dev/null
    else
        cat /dev/urandom
    fi
}

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
fmt_s() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }

# run_timed CMD: runs CMD (a shell string) under /usr/bin/time; sets T_US and T_RSS (KiB).
run_timed() {
    run_bare "/usr/bin/time -f %M -o \"\$RSSF\" $1"
    T_RSS=$(tail -n 1 "$RSSF")
}

# run_bare CMD: CMD timed without /usr/bin/time (for millisecond figures); sets T_US.
run_bare() {
    local t0 t1
    t0=${EPOCHREALTIME/[.,]/}
    eval "$1"
    t1=${EPOCHREALTIME/[.,]/}
    T_US=$((t1 - t0))
}

# settle: before a timed run (untimed): write back everything, then let freed memory settle.
settle() { sync; sleep "${SETTLE:-0}"; }

# json_int KEY: an integer field of the JSON on stdin (first match).
json_int() { sed -n "s/.*\"$1\": *\([0-9][0-9]*\).*/\1/p" | head -n 1; }

# kv KEY TEXT: the value of KEY=VALUE in TEXT (VHDXBench's output lines).
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# median NUMBER...: the median (mean of the middle two for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# make_half_random FILE SIZE: a sparse raw file of SIZE bytes (a multiple of 16 MiB) in 4 MiB
# regions, in groups of four (one 16 MiB group = one VHDX block at qemu's default block size
# for images over 1 GiB and up to 100 GiB). The groups cycle RRRR ZZZZ RZRZ ZRZR (random or
# zero), so exactly half of all bytes are random, and an image of it gets all-data, all-zero
# and mixed blocks. Sets RANDOM_BYTES.
REGION_MIB=4
REGION=$((REGION_MIB * MiB))
is_random() { # region index -> 0 (random) / 1 (zero)
    local i=$1 g=$(( ($1 / 4) % 4 ))
    case $g in
        0) return 0 ;;
        1) return 1 ;;
        2) (( i % 2 == 0 )) ;;
        3) (( i % 2 == 1 )) ;;
    esac
}
make_half_random() {
    local file=$1 size=$2 nreg=$(($2 / REGION)) random_regions=0 i=0 j
    truncate -s "$size" "$file"
    exec 4< <(rand_stream 00000000000000000000000000000000)
    while ((i < nreg)); do
        if is_random $i; then
            j=$i
            while ((j < nreg)) && is_random $j; do j=$((j + 1)); done
            dd of="$file" bs=${REGION_MIB}M seek=$i count=$((j - i)) iflag=fullblock conv=notrunc status=none <&4
            random_regions=$((random_regions + j - i))
            i=$j
        else
            i=$((i + 1))
        fi
    done
    exec 4<&-
    RANDOM_BYTES=$((random_regions * REGION))
    ((RANDOM_BYTES * 2 == size)) || die "pattern error: $RANDOM_BYTES random bytes of $size"
}

# bench_size_mg ARG UNIT_MIB: sets SIZE (bytes) from ARG (a number with an M or G suffix), which
# must be a multiple of UNIT_MIB MiB.
bench_size_mg() {
    [[ $1 =~ ^([1-9][0-9]*)([MmGg])$ ]] || die "BENCH_SIZE must be a number with an M or G suffix (got '$1')"
    case ${BASH_REMATCH[2]} in
        [Mm]) SIZE=$((BASH_REMATCH[1] << 20)) ;;
        [Gg]) SIZE=$((BASH_REMATCH[1] << 30)) ;;
    esac
    ((SIZE % ($2 * MiB) == 0)) || die "BENCH_SIZE must be a multiple of $2 MiB"
}

# make_tracked_mixed DISK SIZE: a new tracked VHDX whose first half holds, alternately, 64 MiB of
# random bytes (AES-CTR keystream, fixed key) and 64 MiB of a tar of /usr (compressible); the
# rest is never written. Uses $W for its scratch files.
make_tracked_mixed() {
    local d=$1 size=$2 off n
    "$VHDX" create "$d" "$size" >/dev/null
    "$VHDX" track enable "$d" >/dev/null
    tar -cf - /usr 2>/dev/null | head -c $((size / 2)) >"$W/usr.tar" || true
    for ((off = 0; off < size / 2; off += 128 * MiB)); do
        rand_stream "$(printf '%032x' $((off / MiB)))" | head -c $((64 * MiB)) >"$W/piece" || true
        "$VHDX" write "$d" --offset "$off" --input "$W/piece" --length $((64 * MiB)) >/dev/null
        dd if="$W/usr.tar" of="$W/piece" bs=1M skip=$((off / MiB / 2)) count=64 status=none
        n=$(stat -c %s "$W/piece")
        if ((n > 0)); then "$VHDX" write "$d" --offset $((off + 64 * MiB)) --input "$W/piece" --length "$n" >/dev/null; fi
    done
    rm -f "$W/usr.tar" "$W/piece"
}

#!/usr/bin/env bash
# NBD serving benchmark: `vhdx serve` vs `qemu-nbd` (same dynamic VHDX) vs `nbdkit file` (the
# same data as a raw file), with the same clients, in one run.
#
#   Scripts/bench-serve.sh
#
# What it measures (issue 18's targets in brackets):
#   1. sequential pull: `nbdcopy URI null:` of a 4 GiB disk, 50% random data
#      [vhdx >= qemu-nbd's throughput, within 1.3x of nbdkit-file]
#   2. random 4 KiB reads and writes: `fio --ioengine=nbd`, IOPS [vhdx >= qemu-nbd]
#   3. block status: `nbdinfo --map` of an empty 64 TiB dynamic disk, and
#      `nbdinfo --map=qemu:dirty-bitmap:ID` with 16,384 scattered changed ranges [< 50 ms a map]
#   4. peak RSS of `vhdx serve` with 16 clients pulling at once [< 64 MiB]
#
# Environment:
#   BENCH_SIZE_GIB   virtual size of the pull/fio image in GiB (default 4)
#   BENCH_RUNS       runs per pull measurement, best reported (default 3)
#   BENCH_FIO_SECS   seconds per fio job (default 10)
#   BENCH_DIR        parent of the work directory (default /var/tmp)
#   BENCH_KEEP=1     keep the work directory
set -euo pipefail
export LC_ALL=C

SIZE_GIB=${BENCH_SIZE_GIB:-4}
RUNS=${BENCH_RUNS:-3}
FIO_SECS=${BENCH_FIO_SECS:-10}
PARENT=${BENCH_DIR:-/var/tmp}

BENCH_NAME=bench-serve
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
[[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_GIB must be a positive integer (got '$SIZE_GIB')"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $FIO_SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_FIO_SECS must be a positive integer (got '$FIO_SECS')"

bench_header "size=${SIZE_GIB} GiB, pull runs=${RUNS} (best), fio ${FIO_SECS} s a job" \
    BENCH_SIZE_GIB BENCH_RUNS BENCH_FIO_SECS BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require qemu-img:qemu-utils qemu-nbd:qemu-utils nbdcopy:libnbd-bin nbdinfo:libnbd-bin \
    nbdkit:nbdkit fio:fio /usr/bin/time:time /usr/bin/python3:python3
/usr/bin/python3 -c 'import nbd' 2>/dev/null || bench_require /usr/lib/python3/dist-packages/nbd.py:python3-libnbd
bench_build
echo "qemu-nbd: $(qemu-nbd --version | head -n 1)"
echo "nbdkit:   $(nbdkit --version | head -n 1)"
echo "nbdcopy:  $(nbdcopy --version | head -n 1)"
echo "fio:      $(fio --version)"
echo
bench_workdir "$PARENT"

# ---------------------------------------------------------------- servers
# Each server is started in the background on its own unix socket and stopped (SIGTERM, then
# waited for) before the next; SERVER_PID and SOCK are the running one's.
SERVER_PID=""
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
BENCH_ON_EXIT=stop_server
wait_socket() {
    local i
    for ((i = 0; i < 300; i++)); do
        [[ -S $1 ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited before listening on $1"
        sleep 0.05
    done
    die "no socket at $1 after 15 s"
}
# start_server NAME IMAGE WRITABLE(0/1): SOCK = its socket.
start_server() {
    local name=$1 image=$2 writable=$3
    SOCK=$W/$name.sock
    rm -f "$SOCK"
    case $name in
        vhdx)
            if ((writable)); then "$VHDX" serve "$image" --socket "$SOCK" >"$W/$name.log" 2>&1 &
            else "$VHDX" serve "$image" --read-only --socket "$SOCK" >"$W/$name.log" 2>&1 &
            fi ;;
        qemu-nbd)
            if ((writable)); then qemu-nbd -t -f vhdx -k "$SOCK" "$image" 2>"$W/$name.log" &
            else qemu-nbd -t -f vhdx -r -k "$SOCK" "$image" 2>"$W/$name.log" &
            fi ;;
        nbdkit)
            if ((writable)); then nbdkit -f -U "$SOCK" file "$image" 2>"$W/$name.log" &
            else nbdkit -f -r -U "$SOCK" file "$image" 2>"$W/$name.log" &
            fi ;;
    esac
    SERVER_PID=$!
    wait_socket "$SOCK"
}
uri() { echo "nbd+unix:///?socket=$1"; }

# ---------------------------------------------------------------- test data
SIZE=$((SIZE_GIB << 30))
echo "== test data"
RAW=$W/img.raw
make_half_random "$RAW" "$SIZE"
IMG=$W/img.vhdx
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$RAW" "$IMG"
"$VHDX" check "$IMG" >/dev/null || die "vhdx check reports problems on the test image"
awk -v s="$SIZE" -v r="$RANDOM_BYTES" -v f="$(stat -c %s "$IMG")" 'BEGIN {
    printf "disk: %d MiB virtual, %d MiB random; img.vhdx (qemu-img, dynamic) %d MiB; img.raw the same bytes\n", s / 1048576, r / 1048576, f / 1048576 }'
cat "$IMG" "$RAW" >/dev/null # warm cache for every server alike
echo

# ---------------------------------------------------------------- 1. sequential pull
echo "== sequential pull: nbdcopy URI null: (best of $RUNS, warm cache)"
names=(vhdx qemu-nbd nbdkit)
images=("$IMG" "$IMG" "$RAW")
declare -a pull
for ((k = 0; k < 3; k++)); do pull[k]=0; done
for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < 3; k++)); do
        start_server "${names[k]}" "${images[k]}" 0
        run_bare "nbdcopy \"\$(uri \"\$SOCK\")\" null:"
        if ((pull[k] == 0 || T_US < pull[k])); then pull[k]=$T_US; fi
        stop_server
    done
done
# Correctness of what was timed: the pulled bytes equal the source.
start_server vhdx "$IMG" 0
nbdcopy "$(uri "$SOCK")" "$W/pulled.raw"
stop_server
cmp -s "$W/pulled.raw" "$RAW" || die "the bytes pulled from vhdx serve differ from the source"
rm -f "$W/pulled.raw"
printf '%-22s %9s %10s %12s %12s\n' "server" "seconds" "MiB/s" "x qemu-nbd" "x nbdkit"
for ((k = 0; k < 3; k++)); do
    awk -v n="${names[k]}" -v us="${pull[k]}" -v q="${pull[1]}" -v f="${pull[2]}" -v s="$SIZE" 'BEGIN {
        printf "%-22s %9.3f %10.0f %12.2f %12.2f\n", n, us / 1e6, (s / 1048576) / (us / 1e6), us / q, us / f }'
done
awk -v v="${pull[0]}" -v q="${pull[1]}" -v f="${pull[2]}" 'BEGIN {
    printf "headline: vhdx/qemu-nbd time %.2fx (target <= 1: %s), vhdx/nbdkit-file %.2fx (target <= 1.3: %s)\n",
        v / q, (v <= q ? "met" : "NOT met"), v / f, (v <= 1.3 * f ? "met" : "NOT met") }'
echo "(the pulled bytes were checked equal to the source with cmp)"
echo

# ---------------------------------------------------------------- 2. random 4 KiB I/O
echo "== random 4 KiB I/O: fio --ioengine=nbd, iodepth 16, ${FIO_SECS} s a job, writable copies of img.vhdx"
fio_iops() { # RW URI -> IOPS
    fio --name=j --ioengine=nbd --uri="$2" --rw="$1" --bs=4k --iodepth=16 --size=$((SIZE_GIB))g \
        --runtime="$FIO_SECS" --time_based --randseed=42 --output-format=json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; t=sys.stdin.read(); j=json.loads(t[t.index("{"):])["jobs"][0]; print(int(j["read"]["iops"] + j["write"]["iops"]))'
}
declare -A iops
for name in vhdx qemu-nbd; do
    cp "$IMG" "$W/rw-$name.vhdx"
    start_server "$name" "$W/rw-$name.vhdx" 1
    iops[$name,randread]=$(fio_iops randread "$(uri "$SOCK")")
    iops[$name,randwrite]=$(fio_iops randwrite "$(uri "$SOCK")")
    stop_server
    if [[ $name == vhdx ]]; then "$VHDX" check "$W/rw-$name.vhdx" >/dev/null || die "vhdx check after the fio writes reports problems"; fi
    rm -f "$W/rw-$name.vhdx"
done
printf '%-12s %12s %12s %10s\n' "job" "vhdx IOPS" "qemu-nbd" "ratio"
for job in randread randwrite; do
    awk -v j=$job -v v="${iops[vhdx,$job]}" -v q="${iops[qemu-nbd,$job]}" 'BEGIN {
        printf "%-12s %12d %12d %10.2f %s\n", j, v, q, v / q, (v >= q ? "(target >= 1: met)" : "(target >= 1: NOT met)") }'
done
echo "(both servers with their defaults: the page cache, durable at FLUSH; vhdx serve's image checked clean after)"
echo

# ---------------------------------------------------------------- 3. block status
echo "== block status: one full map, best of 5 (nbdinfo's own start-up included)"
BIG=$W/big.vhdx
"$VHDX" create "$BIG" 64T >/dev/null
start_server vhdx "$BIG" 0
best=0
for ((r = 0; r < 5; r++)); do
    run_bare "nbdinfo --map \"\$(uri \"\$SOCK\")\" >\"\$W/map.txt\""
    if ((best == 0 || T_US < best)); then best=$T_US; fi
done
extents=$(wc -l <"$W/map.txt")
stop_server
empty_best=$best

TRK=$W/tracked.vhdx
"$VHDX" create "$TRK" 16G >/dev/null
"$VHDX" track enable "$TRK" >/dev/null
ID=$("$VHDX" track seal "$TRK")
start_server vhdx "$TRK" 1
# 16,384 scattered 4 KiB writes through the server (so tracking sees them), 1 MiB apart (more than a tracking granule).
/usr/bin/python3 - "$SOCK" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + sys.argv[1])
buf = b"\x5a" * 4096
for i in range(16384):
    h.pwrite(buf, i << 20)
h.flush()
h.shutdown()
EOF
best=0
for ((r = 0; r < 5; r++)); do
    run_bare "nbdinfo --map=qemu:dirty-bitmap:$ID \"\$(uri \"\$SOCK\")\" >\"\$W/dirty.txt\""
    if ((best == 0 || T_US < best)); then best=$T_US; fi
done
dirty=$(awk '$3 == 1' "$W/dirty.txt" | wc -l)
stop_server
awk -v a="$empty_best" -v e="$extents" -v b="$best" -v d="$dirty" 'BEGIN {
    printf "%-52s %8.1f ms (%d extents)\n", "nbdinfo --map, empty 64 TiB dynamic disk", a / 1000, e
    printf "%-52s %8.1f ms (%d dirty extents)\n", "nbdinfo --map=qemu:dirty-bitmap:ID, 16,384 writes", b / 1000, d
    printf "target < 50 ms a map: 64 TiB %s, dirty bitmap %s\n", (a < 50000 ? "met" : "NOT met"), (b < 50000 ? "met" : "NOT met")
    printf "(a client without NBD extended headers asks at most 4 GiB per BLOCK_STATUS: 64 TiB is 16,384 round trips)\n" }'
((dirty == 16384)) || die "the dirty map has $dirty dirty extents after 16,384 scattered writes (expected 16,384)"
echo

# ---------------------------------------------------------------- 4. RSS, 16 clients
echo "== peak RSS of vhdx serve, 16 clients pulling at once"
start_server vhdx "$IMG" 0
pids=()
for ((c = 0; c < 16; c++)); do nbdcopy "$(uri "$SOCK")" null: & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || die "a concurrent nbdcopy failed"; done
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
stop_server
awk -v k="$hwm" 'BEGIN { printf "peak RSS: %.1f MiB (target < 64 MiB: %s)\n", k / 1024, (k < 65536 ? "met" : "NOT met") }'
echo
echo "done."

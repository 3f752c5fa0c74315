#!/usr/bin/env bash
# Process-level crash test: `vhdx write` is killed with SIGKILL at random moments, over and over,
# on one image; after every kill the image must open, `vhdx check` must report no corruption
# (exit 0 clean or 3 leaks only: space leaked by a crash is allowed, corruption never) and
# `qemu-img check` must agree (0 or 3).
#
#   Scripts/kill-test.sh
#
# Environment:
#   KILLS          iterations (default 200)
#   KILL_SIZE      virtual size of the image (default 256M; dynamic, 1 MiB blocks)
#   KILL_MAX_LEN   largest write in bytes (default 4 MiB)
#   KILL_SEED      seed of bash's RANDOM for the choice of operations (default: random, printed)
#   VHDX_BIN       the vhdx binary to test; default: `swift build -c release` and use its product
#   SWIFT_SCRATCH  scratch path for that build (default: swift's own, .build)
#   KILL_DIR       parent of the work directory (default /var/tmp); removed on success, kept
#                  (with a copy of the bad image) on failure
#
# The last line is the summary, e.g.
#   kill-test: PASS: 200 iterations, 171 killed mid-write, 29 finished first; vhdx check: 150 clean, 50 leaks; ...
# Exit 0 when every image was good, 1 on any bad image, 64 on bad usage.
set -uo pipefail
export LC_ALL=C

KILLS=${KILLS:-200}
SIZE=${KILL_SIZE:-256M}
MAX_LEN=${KILL_MAX_LEN:-$((4 << 20))}
SEED=${KILL_SEED:-$(( $(date +%s%N) % 1000000007 ))}
PARENT=${KILL_DIR:-/var/tmp}

usage() { echo "kill-test: $*" >&2; exit 64; }
[[ $KILLS =~ ^[1-9][0-9]*$ ]] || usage "KILLS must be a positive integer (got '$KILLS')"
[[ $MAX_LEN =~ ^[1-9][0-9]*$ ]] || usage "KILL_MAX_LEN must be a positive integer (got '$MAX_LEN')"
[[ $SEED =~ ^[0-9]+$ ]] || usage "KILL_SEED must be a non-negative integer (got '$SEED')"
command -v qemu-img >/dev/null || usage "qemu-img is not installed (bash Scripts/test.sh installs it)"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -n ${VHDX_BIN:-} ]]; then
    VHDX=$VHDX_BIN
else
    echo "kill-test: building release..." >&2
    build=(swift build -c release --package-path "$ROOT" --product vhdx)
    [[ -n ${SWIFT_SCRATCH:-} ]] && build+=(--scratch-path "$SWIFT_SCRATCH")
    "${build[@]}" >&2 || { echo "kill-test: release build failed" >&2; exit 1; }
    VHDX=$("${build[@]}" --show-bin-path)/vhdx
fi
[[ -x $VHDX ]] || usage "no vhdx binary at '$VHDX'"

WORK=$(mktemp -d "$PARENT/vhdx-kill.XXXXXX") || exit 1
IMG=$WORK/kill.vhdx
keep=0
trap '[[ $keep == 1 ]] || rm -rf "$WORK"' EXIT

RANDOM=$SEED
echo "kill-test: $KILLS iterations on a $SIZE dynamic image (1 MiB blocks), seed $SEED, binary $VHDX" >&2
"$VHDX" create "$IMG" "$SIZE" --block-size 1M || { echo "kill-test: create failed" >&2; exit 1; }
BYTES=$("$VHDX" info --json "$IMG" | sed -n 's/.*"virtual-size" *: *\([0-9]*\).*/\1/p' | head -1)
[[ $BYTES =~ ^[0-9]+$ ]] || { echo "kill-test: cannot read the virtual size" >&2; exit 1; }

rand30() { echo $(( (RANDOM << 15) | RANDOM )); }

iterations=0 mid=0 finished=0 clean=0 leaks=0 pending=0 qclean=0 qleaks=0
bad=""
for ((i = 1; i <= KILLS; i++)); do
    # Length 1 byte .. MAX_LEN, at a random offset; half the time sector-aligned.
    len=$(( $(rand30) % MAX_LEN + 1 ))
    off=$(( $(rand30) * 64 % BYTES ))
    if (( RANDOM % 2 )); then off=$(( off / 512 * 512 )); len=$(( (len + 511) / 512 * 512 )); fi
    (( off + len > BYTES )) && len=$(( BYTES - off ))
    (( len == 0 )) && { off=0; len=4096; }
    case $(( RANDOM % 10 )) in
        0|1|2|3) op=(--pattern "$(printf '0x%02x' $(( RANDOM % 255 + 1 )))" --length "$len") ;;
        4|5|6)   op=(--input /dev/urandom --length "$len") ;;
        7|8)     op=(--zero --length "$len") ;;
        9)       op=(--trim --length "$len") ;;
    esac
    desc="write --offset $off ${op[*]}"
    delay=$(printf '0.%03d' $(( RANDOM % 51 )))

    "$VHDX" write "$IMG" --offset "$off" "${op[@]}" 2>"$WORK/writer.err" &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    # (braces: bash's own "Killed" job notice goes to the redirected stderr too)
    { wait "$pid"; } 2>/dev/null
    rc=$?
    iterations=$i
    # 137 = died of SIGKILL, i.e. the kill landed while the writer was still running. (kill's
    # own status is no measure: it also succeeds on a writer that exited but is not reaped yet.)
    if (( rc == 137 )); then
        mid=$((mid + 1))
    elif (( rc == 0 )); then
        finished=$((finished + 1))
    else
        bad="iteration $i: the writer failed by itself (exit $rc): $(head -c 500 "$WORK/writer.err")"
    fi

    if [[ -z $bad ]]; then
        "$VHDX" check "$IMG" >"$WORK/check.out" 2>&1
        crc=$?
        case $crc in
            0) clean=$((clean + 1)) ;;
            3) leaks=$((leaks + 1)) ;;
            *) bad="iteration $i: vhdx check exit $crc: $(head -c 2000 "$WORK/check.out")" ;;
        esac
    fi
    if [[ -z $bad ]]; then
        # The image must open (read-only; a pending log is replayed in memory).
        if ! "$VHDX" info --json "$IMG" >"$WORK/info.json" 2>"$WORK/info.err"; then
            bad="iteration $i: the image does not open: $(head -c 500 "$WORK/info.err")"
        fi
    fi
    if [[ -z $bad ]]; then
        # qemu refuses a read-only open while a log is pending: then it checks a copy with
        # -r leaks, which replays the log with qemu's own replay code first.
        target=$IMG qopts=()
        if grep -q '"replayed-in-memory"' "$WORK/info.json"; then
            pending=$((pending + 1))
            cp --sparse=always "$IMG" "$WORK/qcopy.vhdx"
            target=$WORK/qcopy.vhdx qopts=(-r leaks)
        fi
        qemu-img check -f vhdx "${qopts[@]}" "$target" >"$WORK/qcheck.out" 2>&1
        qrc=$?
        case $qrc in
            0) qclean=$((qclean + 1)) ;;
            3) qleaks=$((qleaks + 1)) ;;
            *) bad="iteration $i: qemu-img check ${qopts[*]} exit $qrc: $(head -c 2000 "$WORK/qcheck.out")" ;;
        esac
        rm -f "$WORK/qcopy.vhdx"
    fi
    if [[ -n $bad ]]; then
        keep=1
        cp --sparse=always "$IMG" "$WORK/bad-iteration-$i.vhdx"
        echo "kill-test: BAD IMAGE after: $desc (killed after ${delay}s, writer exit $rc)" >&2
        echo "kill-test: $bad" >&2
        echo "kill-test: kept $WORK/bad-iteration-$i.vhdx (seed $SEED)" >&2
        break
    fi
    (( i % 25 == 0 )) && echo "kill-test: $i/$KILLS iterations, $mid killed mid-write" >&2
done

result=PASS
[[ -n $bad ]] && result=FAIL
echo "kill-test: $result: $iterations iterations, $mid killed mid-write, $finished finished first; vhdx check: $clean clean, $leaks leaks; qemu-img check: $qclean clean, $qleaks leaks; $pending left a pending log; seed $SEED"
[[ -z $bad ]]

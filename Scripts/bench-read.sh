#!/usr/bin/env bash
# Read/convert benchmark: vhdx vs qemu-img vs cat, on the same data, in one run.
#
#   Scripts/bench-read.sh
#
# Environment:
#   BENCH_SIZE_GIB   virtual size of the test image in GiB (integer, default 4)
#   BENCH_RUNS       runs per convert/read measurement, best is reported (default 3)
#   BENCH_META_RUNS  runs per info/check measurement on the 64 TiB image (default 5)
#   BENCH_DIR        parent of the work directory (default /var/tmp); a fresh mktemp -d
#                    is made inside it and removed on exit
#   BENCH_KEEP=1     keep the work directory
#   BENCH_XFS=0      skip the XFS table (by default, as root, an XFS image is made in the work
#                    directory, loop-mounted with reflink, and the convert table run there too)
#
# All timings are wall clock, warm page cache (the source image is read once beforehand;
# caches are not dropped). Between timed runs the previous output is deleted and `sync` is
# run (untimed), so no run pays for another run's dirty-page writeback.
set -euo pipefail
export LC_ALL=C

SIZE_GIB=${BENCH_SIZE_GIB:-4}
RUNS=${BENCH_RUNS:-3}
META_RUNS=${BENCH_META_RUNS:-5}
PARENT=${BENCH_DIR:-/var/tmp}

BENCH_NAME=bench-read
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
[[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_GIB must be a positive integer (got '$SIZE_GIB')"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ $META_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_META_RUNS must be a positive integer (got '$META_RUNS')"

bench_header "size=${SIZE_GIB} GiB, runs=${RUNS} (convert/read), ${META_RUNS} (info/check), best run reported" \
    BENCH_SIZE_GIB BENCH_RUNS BENCH_META_RUNS BENCH_XFS BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require qemu-img:qemu-utils /usr/bin/time:time
bench_build
bench_workdir "$PARENT"

# ---------------------------------------------------------------- test data
# The source: half random, half zeros, in the 4 MiB-region pattern of make_half_random (bench-lib.sh).
SIZE=$((SIZE_GIB << 30))
echo "== test data"
t0=${EPOCHREALTIME/[.,]/}
RAW=$W/img.raw
make_half_random "$RAW" "$SIZE"
t1=${EPOCHREALTIME/[.,]/}
awk -v us=$((t1 - t0)) -v r=$RANDOM_BYTES -v s=$SIZE -v a="$(du -B1 "$RAW" | cut -f1)" 'BEGIN {
    printf "raw:  %d MiB virtual, %d MiB random (%.1f%%), %d MiB allocated, made in %.1f s\n",
           s / 1048576, r / 1048576, 100 * r / s, a / 1048576, us / 1e6 }'

IMG=$W/img.vhdx
t0=${EPOCHREALTIME/[.,]/}
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$RAW" "$IMG"
t1=${EPOCHREALTIME/[.,]/}
info_json=$("$VHDX" info "$IMG" --json)
VSIZE=$(json_int virtual-size <<<"$info_json")
BLOCK=$(json_int block-size <<<"$info_json")
FSIZE=$(stat -c %s "$IMG")
blocks_line=$("$VHDX" info "$IMG" | sed -n 's/^blocks: //p')
awk -v us=$((t1 - t0)) -v v="$VSIZE" -v b="$BLOCK" -v f="$FSIZE" -v bl="$blocks_line" 'BEGIN {
    printf "vhdx: %d MiB virtual, block size %d MiB, file %d MiB, blocks: %s (qemu-img convert raw->vhdx %.1f s)\n",
           v / 1048576, b / 1048576, f / 1048576, bl, us / 1e6 }'
((VSIZE == SIZE)) || die "virtual size $VSIZE != $SIZE"
"$VHDX" check "$IMG" >/dev/null || die "vhdx check reports problems on the test image"
echo

# ---------------------------------------------------------------- convert / read
# convert_table DIR LABEL: the convert/read rows on the image at DIR/img.vhdx, outputs in DIR.
# Rounds are interleaved (a b c ..., a b c ...) so drift hits all tools alike; before each
# run the previous output is deleted and `sync` is run (untimed).
convert_table() {
    local dir=$1 label=$2 k r
    IMGT=$dir/img.vhdx
    OUT_V=$dir/out.raw
    OUT_Q=$dir/out2.raw
    local names=("vhdx convert -> raw file"
                 "  same, VHDX_COPY_OFFLOAD=0"
                 "qemu-img convert -> raw file"
                 "qemu-img convert + sync -d (*)"
                 "cat img.vhdx > /dev/null"
                 "vhdx convert - > /dev/null")
    local cmds=("\"\$VHDX\" convert \"\$IMGT\" \"\$OUT_V\""
                "env VHDX_COPY_OFFLOAD=0 \"\$VHDX\" convert \"\$IMGT\" \"\$OUT_V\""
                "qemu-img convert -f vhdx -O raw \"\$IMGT\" \"\$OUT_Q\""
                "sh -c 'qemu-img convert -f vhdx -O raw \"\$1\" \"\$2\" && sync -d \"\$2\"' sh \"\$IMGT\" \"\$OUT_Q\""
                "cat \"\$IMGT\" >/dev/null"
                "\"\$VHDX\" convert \"\$IMGT\" - >/dev/null")
    local preps=("rm -f \"\$OUT_V\"" "rm -f \"\$OUT_V\"" "rm -f \"\$OUT_Q\"" "rm -f \"\$OUT_Q\"" ":" ":")
    local n=${#names[@]}
    local -a best rss all
    for ((k = 0; k < n; k++)); do best[k]=0; rss[k]=0; all[k]=""; done

    echo "== convert / read ($label): ${SIZE_GIB} GiB virtual, 50% random data, best of $RUNS, warm cache"
    echo "warm-up: cat img.vhdx > /dev/null (so every timing below is warm-cache; caches are not dropped)"
    cat "$IMGT" >/dev/null
    for ((r = 1; r <= RUNS; r++)); do
        for ((k = 0; k < n; k++)); do
            eval "${preps[k]}"
            sync
            run_timed "${cmds[k]}"
            all[k]+="$(fmt_s $T_US) "
            if ((best[k] == 0 || T_US < best[k])); then best[k]=$T_US; fi
            if ((T_RSS > rss[k])); then rss[k]=$T_RSS; fi
        done
    done
    # Correctness: vhdx's output with offload (made again: the off row ran after it) and
    # without, against qemu-img's and the source.
    "$VHDX" convert --force "$IMGT" "$OUT_V"
    if ! cmp -s "$OUT_V" "$OUT_Q"; then
        echo "!!!!!!!! MISMATCH: vhdx convert output differs from qemu-img convert output !!!!!!!!" >&2
        cmp "$OUT_V" "$OUT_Q" | head -n 3 >&2 || true
        die "outputs differ"
    fi
    cmp -s "$OUT_V" "$RAW" || die "vhdx convert output differs from the original raw data"
    local alloc_v alloc_o alloc_q
    alloc_v=$(du -B1 "$OUT_V" | cut -f1)
    alloc_q=$(du -B1 "$OUT_Q" | cut -f1)
    VHDX_COPY_OFFLOAD=0 "$VHDX" convert --force "$IMGT" "$OUT_V"
    cmp -s "$OUT_V" "$RAW" || die "vhdx convert output with VHDX_COPY_OFFLOAD=0 differs from the original raw data"
    alloc_o=$(du -B1 "$OUT_V" | cut -f1)

    local tq=${best[2]} tqs=${best[3]} tcat=${best[4]}
    printf '%-32s %9s %10s %10s %9s %8s %9s   %s\n' "tool" "seconds" "MiB/s(v)" "x qemu-img" "x q+sync" "x cat" "RSS MiB" "all runs (s)"
    printf '%-32s %9s %10s %10s %9s %8s %9s   %s\n' "--------------------------------" "-------" "--------" "----------" "--------" "-----" "-------" "------------"
    for ((k = 0; k < n; k++)); do
        awk -v name="${names[k]}" -v us="${best[k]}" -v q="$tq" -v qs="$tqs" -v c="$tcat" -v v="$VSIZE" -v rss="${rss[k]}" -v all="${all[k]}" 'BEGIN {
            printf "%-32s %9.3f %10.0f %10.2f %9.2f %8.2f %9.1f   %s\n", name, us / 1e6, (v / 1048576) / (us / 1e6), us / q, us / qs, us / c, rss / 1024, all }'
    done
    echo "MiB/s(v) = virtual size (${SIZE_GIB} GiB) / time; x qemu-img, x q+sync, x cat = time / that row's time (>1 = slower)."
    echo "(*) vhdx convert ends with fdatasync on its output; plain qemu-img convert does not (it leaves"
    echo "    dirty pages for the kernel), so 'qemu-img convert + sync -d' is the like-for-like comparison."
    echo "vhdx convert moves data extents with copy_file_range (in-kernel copy, reflink where the filesystem"
    echo "shares extents); VHDX_COPY_OFFLOAD=0 reads and writes them itself."
    awk -v a="$alloc_v" -v o="$alloc_o" -v b="$alloc_q" 'BEGIN { printf "outputs: byte-identical (cmp), equal to the source raw; allocated: vhdx %d MiB (offload off: %d MiB), qemu-img %d MiB\n", a / 1048576, o / 1048576, b / 1048576 }'
    awk -v v="${best[0]}" -v qs="$tqs" -v l="$label" 'BEGIN { r = v / qs
        printf "headline (%s): vhdx convert / (qemu-img convert + sync) = %.2fx (target <= 0.9x: %s)\n", l, r, (r <= 0.9 ? "met" : "NOT met") }'
    rm -f "$OUT_V" "$OUT_Q"
    echo
}

convert_table "$W" "$(df -T "$W" | awk 'NR==2 {print $2}')"

# The same on XFS (reflink: copy_file_range shares the extents, nothing is copied), on a loop
# mount of an image file inside the work directory. Needs root and xfsprogs (installed when
# missing); BENCH_XFS=0 skips it, and so does a machine that refuses the loop mount.
if [[ ${BENCH_XFS:-1} != 0 ]]; then
    XFS_IMG=$W/xfs.img XFS_MNT=$W/xfs
    if [[ $(id -u) -ne 0 ]]; then
        echo "XFS (reflink) table skipped: needs root for the loop mount"
    else
        bench_require mkfs.xfs:xfsprogs
        truncate -s $(( (SIZE_GIB * 3 + 2) * GiB )) "$XFS_IMG"
        mkdir -p "$XFS_MNT"
        if mkfs.xfs -q -m reflink=1 "$XFS_IMG" && mount -o loop "$XFS_IMG" "$XFS_MNT"; then
            BENCH_ON_EXIT='umount "$XFS_MNT"'
            cp "$IMG" "$XFS_MNT/img.vhdx"
            convert_table "$XFS_MNT" "xfs, reflink, loop mount"
            umount "$XFS_MNT"
            BENCH_ON_EXIT=""
        else
            echo "XFS (reflink) table skipped: mkfs.xfs or the loop mount failed"
        fi
        rm -f "$XFS_IMG"
    fi
fi

# ---------------------------------------------------------------- 64 TiB metadata
IMG64=$W/img64t.vhdx
qemu-img create -f vhdx "$IMG64" 64T >/dev/null
info_json=$("$VHDX" info "$IMG64" --json)
awk -v b="$(json_int block-size <<<"$info_json")" -v f="$(stat -c %s "$IMG64")" -v m="$META_RUNS" 'BEGIN {
    printf "== metadata: empty 64 TiB dynamic VHDX (block size %d MiB, file %.1f MiB), best of %d\n", b / 1048576, f / 1048576, m }'

mnames=("vhdx info" "qemu-img info" "vhdx check" "qemu-img check")
mcmds=("\"\$VHDX\" info \"\$IMG64\" >/dev/null"
       "qemu-img info \"\$IMG64\" >/dev/null"
       "\"\$VHDX\" check \"\$IMG64\" >/dev/null"
       "qemu-img check \"\$IMG64\" >/dev/null")
M=${#mnames[@]}
declare -a mbest mrss
for ((k = 0; k < M; k++)); do mbest[k]=0; mrss[k]=0; done
for ((r = 1; r <= META_RUNS; r++)); do
    for ((k = 0; k < M; k++)); do
        run_bare "${mcmds[k]}"                 # timing: no wrapper
        if ((mbest[k] == 0 || T_US < mbest[k])); then mbest[k]=$T_US; fi
        run_timed "${mcmds[k]}"                # peak RSS: /usr/bin/time -f %M
        if ((T_RSS > mrss[k])); then mrss[k]=$T_RSS; fi
    done
done
printf '%-16s %10s %9s %12s %12s\n' "tool" "ms" "RSS MiB" "ms x qemu" "RSS x qemu"
printf '%-16s %10s %9s %12s %12s\n' "----------------" "--" "-------" "---------" "----------"
for ((k = 0; k < M; k++)); do
    ref=$((k - k % 2 + 1)) # the qemu-img row of the pair
    awk -v name="${mnames[k]}" -v us="${mbest[k]}" -v rss="${mrss[k]}" -v qus="${mbest[ref]}" -v qrss="${mrss[ref]}" 'BEGIN {
        printf "%-16s %10.1f %9.1f %12.2f %12.2f\n", name, us / 1000, rss / 1024, us / qus, rss / qrss }'
done
echo "ms = best wall time of $META_RUNS bare runs (process start included); RSS = max peak RSS (/usr/bin/time -f %M) over $META_RUNS runs."
echo
echo "done."

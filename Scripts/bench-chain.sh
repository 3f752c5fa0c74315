#!/usr/bin/env bash
# Differencing-chain read benchmark: reading a depth-N chain vs the same disk flattened, in one run.
#
#   Scripts/bench-chain.sh
#
# Builds a base image (dynamic, 32 MiB blocks) with BENCH_BASE_MIB of random data in scattered
# whole blocks, then BENCH_DEPTH children on top of each other (`vhdx create --parent`, 2 MiB
# blocks), each writing its own pseudo-random scattered regions: whole 2 MiB blocks
# (NOT_PRESENT -> FULLY_PRESENT) and partial, 4 KiB-aligned pieces (PARTIALLY_PRESENT blocks,
# whose other sectors fall through to the layers below), with `vhdx write`. Every write is also
# applied with dd to a raw file, which is the expected content. The chain is flattened with
# `vhdx convert top.avhdx flat.vhdx` (32 MiB blocks, the default) and, like for like, with
# --block-size 2M (the children's block size: no zero-filled remainders of big blocks to read);
# then, interleaved, best of BENCH_RUNS:
#   vhdx convert top.avhdx - > /dev/null     reading the whole chain
#   vhdx convert flat.vhdx - > /dev/null     reading the flattened image (headline: chain/flat)
#   vhdx convert flat2m.vhdx - > /dev/null   the same with 2 MiB blocks
#   qemu-img convert flat.vhdx -> null-co    qemu reading the flattened image (qemu-img cannot
#                                            open VHDX differencing images at all)
#   cat expect.raw > /dev/null               a raw file of the same content (sparse: holes
#                                            where no layer holds data)
# and checks that the chain, the flat image (vhdx and qemu-img) and the raw file hash equal.
#
# Environment:
#   BENCH_SIZE_GIB       virtual size in GiB (integer, default 4)
#   BENCH_BASE_MIB       random data in the base, MiB, a multiple of 32 (default 1024)
#   BENCH_DEPTH          number of children stacked on the base (default 8)
#   BENCH_CHILD_FULL     whole 2 MiB blocks each child writes (default 16)
#   BENCH_CHILD_PARTIAL  partial writes (4 KiB-aligned, 64 KiB..1 MiB) each child makes (default 32)
#   BENCH_FRAG_WRITES    extra random 4 KiB writes per child (default 0), through VHDXBench
#                        random-writes (and the same writes into expect.raw through qemu-io):
#                        a fragmented chain, every block PARTIALLY_PRESENT with many runs. Then
#                        the flat images are converted from expect.raw, not from the chain:
#                        `vhdx convert CHAIN out.vhdx` is quadratic on fragmented chains (it
#                        resolves 256 MiB ahead per allocation run) and would take hours.
#   BENCH_SEED           seed of the children's offsets (default 1)
#   BENCH_RUNS           runs per measurement, best is reported (default 3)
#   BENCH_DIR            parent of the work directory (default /var/tmp); a fresh mktemp -d
#                        is made inside it and removed on exit
#   BENCH_SCRATCH        swift build --scratch-path (default: the package's .build)
#   BENCH_KEEP=1         keep the work directory
#
# All timings are wall clock, warm page cache: every command runs once, untimed, beforehand and
# caches are not dropped (that needs root), so these are CPU/memory-bound figures for all tools.
set -euo pipefail
export LC_ALL=C

SIZE_GIB=${BENCH_SIZE_GIB:-4}
BASE_MIB=${BENCH_BASE_MIB:-1024}
DEPTH=${BENCH_DEPTH:-8}
FULL=${BENCH_CHILD_FULL:-16}
PARTIAL=${BENCH_CHILD_PARTIAL:-32}
FRAG=${BENCH_FRAG_WRITES:-0}
SEED=${BENCH_SEED:-1}
RUNS=${BENCH_RUNS:-3}
PARENT=${BENCH_DIR:-/var/tmp}

BENCH_NAME=bench-chain
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
[[ $SIZE_GIB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_GIB must be a positive integer (got '$SIZE_GIB')"
[[ $BASE_MIB =~ ^[0-9]+$ ]] && ((BASE_MIB % 32 == 0)) || die "BENCH_BASE_MIB must be a multiple of 32 (got '$BASE_MIB')"
((BASE_MIB <= SIZE_GIB * 1024)) || die "BENCH_BASE_MIB ($BASE_MIB) exceeds the virtual size"
[[ $DEPTH =~ ^[1-9][0-9]*$ ]] || die "BENCH_DEPTH must be a positive integer (got '$DEPTH')"
[[ $FULL =~ ^[0-9]+$ ]] || die "BENCH_CHILD_FULL must be a non-negative integer (got '$FULL')"
[[ $PARTIAL =~ ^[0-9]+$ ]] || die "BENCH_CHILD_PARTIAL must be a non-negative integer (got '$PARTIAL')"
[[ $FRAG =~ ^[0-9]+$ ]] || die "BENCH_FRAG_WRITES must be a non-negative integer (got '$FRAG')"
[[ $SEED =~ ^[0-9]+$ ]] || die "BENCH_SEED must be a non-negative integer (got '$SEED')"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"

bench_header "size=${SIZE_GIB} GiB, base=${BASE_MIB} MiB random, depth=${DEPTH}, per child: ${FULL} whole + ${PARTIAL} partial + ${FRAG} random 4 KiB writes, seed=${SEED}, runs=${RUNS}, best run reported" \
    BENCH_SIZE_GIB BENCH_BASE_MIB BENCH_DEPTH BENCH_CHILD_FULL BENCH_CHILD_PARTIAL BENCH_FRAG_WRITES BENCH_SEED BENCH_RUNS BENCH_DIR BENCH_SCRATCH BENCH_KEEP
bench_require qemu-img:qemu-utils qemu-io:qemu-utils /usr/bin/time:time
if ((FRAG > 0)); then bench_build bench; else bench_build; fi

# ---------------------------------------------------------------- work dir
bench_workdir "$PARENT"

# ---------------------------------------------------------------- helpers
SIZE=$((SIZE_GIB << 30))
BASE_BLOCK=$((32 * MiB))
CHILD_BLOCK=$((2 * MiB))
# A 31-bit LCG, so the children's offsets depend on BENCH_SEED only (not on bash's $RANDOM).
R=$(( (SEED * 2654435761 + 12345) % 2147483648 ))
rnd() { # N -> RND in [0, N)
    R=$(( (R * 1103515245 + 12345) % 2147483648 ))
    RND=$(( (R >> 4) % $1 ))
}

# ---------------------------------------------------------------- base
echo "== test data"
t0=$(now_us)
EXPECT=$W/expect.raw
truncate -s "$SIZE" "$EXPECT"
NBB=$((SIZE / BASE_BLOCK))
NRAND=$((BASE_MIB / 32))
# Random blocks spread over the disk: block floor(k * NBB / NRAND) + a small jitter.
exec 4< <(rand_stream 00000000000000000000000000000000)
prev=-1
for ((k = 0; k < NRAND; k++)); do
    b=$(( k * NBB / NRAND ))
    gap=$(( (k + 1) * NBB / NRAND - b ))
    ((gap > 1)) && b=$(( b + (k * 7) % gap ))
    ((b > prev)) || die "base layout error"
    dd of="$EXPECT" bs=32M seek=$b count=1 iflag=fullblock conv=notrunc status=none <&4
    prev=$b
done
exec 4<&-
BASE=$W/base.vhdx
"$VHDX" convert "$EXPECT" "$BASE"
t1=$(now_us)
awk -v us=$((t1 - t0)) -v n=$NRAND -v nb=$NBB -v f="$(stat -c %s "$BASE")" 'BEGIN {
    printf "base.vhdx: %d of %d 32 MiB blocks random, file %d MiB, made in %.1f s\n", n, nb, f / 1048576, us / 1e6 }'

# ---------------------------------------------------------------- children
# Each write's bytes are a slice of a random pool at a random 4 KiB-aligned offset; the same
# bytes go into the child (vhdx write) and into expect.raw (dd).
POOL=$W/pool.bin
POOL_MIB=64
rand_stream 0000000000000000000000000000abcd | dd of="$POOL" bs=1M count=$POOL_MIB iflag=fullblock status=none || true
(( $(stat -c %s "$POOL") == POOL_MIB * MiB )) || die "random pool is short"
CHUNK=$W/chunk.bin
NCB=$((SIZE / CHILD_BLOCK))
child_write() { # IMAGE OFFSET LENGTH
    rnd $(( (POOL_MIB * MiB - $3) / 4096 + 1 ))
    dd if="$POOL" of="$CHUNK" bs=64K skip=$((RND * 4096)) count="$3" iflag=skip_bytes,count_bytes status=none
    "$VHDX" write "$1" --offset "$2" --input "$CHUNK" >/dev/null
    dd if="$CHUNK" of="$EXPECT" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
    WRITTEN=$((WRITTEN + $3))
}
t0=$(now_us)
prev=$BASE
WRITTEN=0
for ((c = 1; c <= DEPTH; c++)); do
    img=$W/c$c.avhdx
    "$VHDX" create "$img" --parent "$prev" >/dev/null
    for ((i = 0; i < FULL; i++)); do
        rnd $NCB
        child_write "$img" $((RND * CHILD_BLOCK)) $CHILD_BLOCK
    done
    for ((i = 0; i < PARTIAL; i++)); do
        rnd $NCB; blk=$RND
        rnd 241; len=$(( (16 + RND) * 4096 ))               # 64 KiB .. 1 MiB
        rnd $(( (CHILD_BLOCK - len) / 4096 + 1 )); at=$((RND * 4096))
        child_write "$img" $((blk * CHILD_BLOCK + at)) $len
    done
    if ((FRAG > 0)); then
        fseed=$((SEED * 1000 + c))
        "$BENCH" random-writes "$img" --count "$FRAG" --seed "$fseed" >/dev/null
        qrc=0
        "$BENCH" qemu-io-script --size "$SIZE" --count "$FRAG" --seed "$fseed" | qemu-io -f raw "$EXPECT" >"$W/qemu-io.out" 2>&1 || qrc=$?
        if ((qrc != 0)) || [[ -n $(sed 's/qemu-io> //g' "$W/qemu-io.out" | tr -d ' \n') ]]; then
            sed 's/qemu-io> //g' "$W/qemu-io.out" | head -n 20 >&2
            die "qemu-io failed on expect.raw (exit $qrc)"
        fi
        WRITTEN=$((WRITTEN + FRAG * 4096))
    fi
    prev=$img
done
TOP=$prev
t1=$(now_us)
# The BAT state of every layer.
for ((c = 1; c <= DEPTH; c++)); do
    img=$W/c$c.avhdx
    printf '  c%-2d %6.1f MiB file, blocks: %s\n' $c "$(awk -v s="$(stat -c %s "$img")" 'BEGIN { print s / 1048576 }')" \
        "$("$VHDX" info "$img" | sed -n 's/^blocks: //p')"
done
awk -v us=$((t1 - t0)) -v d=$DEPTH -v w=$WRITTEN -v n=$((DEPTH * (FULL + PARTIAL + FRAG))) 'BEGIN {
    printf "children: %d images, %d writes, %.0f MiB written, made in %.1f s\n", d, n, w / 1048576, us / 1e6 }'
"$VHDX" check "$TOP" >/dev/null || die "vhdx check reports problems on $TOP"

FLAT=$W/flat.vhdx
FLAT_SRC=$TOP
if ((FRAG > 0)); then
    FLAT_SRC=$EXPECT
    echo "fragmented chain: flat images are converted from expect.raw (same content, checked below), not from the chain"
fi
t0=$(now_us)
"$VHDX" convert "$FLAT_SRC" "$FLAT"
t1=$(now_us)
info_json=$("$VHDX" info "$FLAT" --json)
src=$(basename "$FLAT_SRC")
VSIZE=$(json_int virtual-size <<<"$info_json")
((VSIZE == SIZE)) || die "virtual size $VSIZE != $SIZE"
awk -v us=$((t1 - t0)) -v src="$src" -v f="$(stat -c %s "$FLAT")" -v bl="$("$VHDX" info "$FLAT" | sed -n 's/^blocks: //p')" -v a="$(du -B1 "$EXPECT" | cut -f1)" 'BEGIN {
    printf "flat.vhdx: file %d MiB, blocks: %s (vhdx convert %s flat.vhdx: %.1f s)\n", f / 1048576, bl, src, us / 1e6
    printf "expect.raw: %d MiB allocated (sparse)\n", a / 1048576 }'
"$VHDX" check "$FLAT" >/dev/null || die "vhdx check reports problems on flat.vhdx"
FLAT2=$W/flat2m.vhdx
"$VHDX" convert --block-size 2M "$FLAT_SRC" "$FLAT2"
awk -v f="$(stat -c %s "$FLAT2")" -v bl="$("$VHDX" info "$FLAT2" | sed -n 's/^blocks: //p')" 'BEGIN {
    printf "flat2m.vhdx: file %d MiB, blocks: %s\n", f / 1048576, bl }'
"$VHDX" check "$FLAT2" >/dev/null || die "vhdx check reports problems on flat2m.vhdx"
qemu-img check -f vhdx "$FLAT" >/dev/null || die "qemu-img check reports problems on flat.vhdx"
if qerr=$(qemu-img info "$TOP" 2>&1 >/dev/null); then
    echo "note: qemu-img opened the differencing image (unexpected); it is still only timed on flat.vhdx"
else
    echo "qemu-img cannot open the chain: $(head -n 1 <<<"$qerr")"
fi
echo

# ---------------------------------------------------------------- correctness
echo "== content (sha256 of the whole ${SIZE_GIB} GiB virtual disk)"
h_chain=$("$VHDX" convert "$TOP" - | sha256sum | cut -c1-64)
h_flat=$("$VHDX" convert "$FLAT" - | sha256sum | cut -c1-64)
h_flat2=$("$VHDX" convert "$FLAT2" - | sha256sum | cut -c1-64)
h_raw=$(sha256sum <"$EXPECT" | cut -c1-64)
QRAW=$W/qemu.raw
qemu-img convert -f vhdx -O raw "$FLAT" "$QRAW"
h_qemu=$(sha256sum <"$QRAW" | cut -c1-64)
rm -f "$QRAW"
echo "  vhdx convert top.avhdx -   $h_chain"
echo "  vhdx convert flat.vhdx -   $h_flat"
echo "  vhdx convert flat2m.vhdx - $h_flat2"
echo "  qemu-img convert flat.vhdx $h_qemu"
echo "  expect.raw (dd model)      $h_raw"
if [[ $h_chain != "$h_raw" || $h_flat != "$h_raw" || $h_flat2 != "$h_raw" || $h_qemu != "$h_raw" ]]; then
    echo "!!!!!!!! MISMATCH: the chain, the flat image and the expected raw content differ !!!!!!!!" >&2
    die "content differs"
fi
echo "  ok  all equal"
echo

# ---------------------------------------------------------------- timing
names=("vhdx convert top.avhdx - (chain)"
       "vhdx convert flat.vhdx -"
       "vhdx convert flat2m.vhdx -"
       "qemu-img convert flat -> null-co"
       "cat expect.raw")
cmds=("\"\$VHDX\" convert \"\$TOP\" - >/dev/null"
      "\"\$VHDX\" convert \"\$FLAT\" - >/dev/null"
      "\"\$VHDX\" convert \"\$FLAT2\" - >/dev/null"
      "qemu-img convert -n -f vhdx --target-image-opts \"\$FLAT\" driver=null-co,size=\$SIZE"
      "cat \"\$EXPECT\" >/dev/null")
N=${#names[@]}
declare -a best rss all
for ((k = 0; k < N; k++)); do best[k]=0; rss[k]=0; all[k]=""; done

echo "== read: ${SIZE_GIB} GiB virtual, best of $RUNS, warm cache"
# Warm-up: one untimed run of every command, so each reads what it will read from the page cache
# (cat of the images would not do: the children are sparse files of the disk's full size, and
# reading their holes fills the cache with zero pages that push out the data).
echo "warm-up: one untimed run of each command (caches are not dropped: no root needed, all timings warm)"
for ((k = 0; k < N; k++)); do eval "${cmds[k]}"; done
for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < N; k++)); do
        run_timed "${cmds[k]}"
        all[k]+="$(fmt_s $T_US) "
        if ((best[k] == 0 || T_US < best[k])); then best[k]=$T_US; fi
        if ((T_RSS > rss[k])); then rss[k]=$T_RSS; fi
    done
done

T_FLAT=${best[1]}
T_CAT=${best[4]}
printf '%-34s %9s %10s %8s %8s %9s   %s\n' "reader" "seconds" "MiB/s(v)" "x flat" "x cat" "RSS MiB" "all runs (s)"
printf '%-34s %9s %10s %8s %8s %9s   %s\n' "----------------------------------" "-------" "--------" "------" "-----" "-------" "------------"
for ((k = 0; k < N; k++)); do
    awk -v name="${names[k]}" -v us="${best[k]}" -v f="$T_FLAT" -v c="$T_CAT" -v v="$SIZE" -v rss="${rss[k]}" -v all="${all[k]}" 'BEGIN {
        printf "%-34s %9.3f %10.0f %8.2f %8.2f %9.1f   %s\n", name, us / 1e6, (v / 1048576) / (us / 1e6), us / f, us / c, rss / 1024, all }'
done
echo "MiB/s(v) = virtual size (${SIZE_GIB} GiB) / time; x flat, x cat = time / that row's time (>1 = slower)."
echo "vhdx convert - writes every byte (zeros too) to /dev/null; qemu-img's null-co target discards writes"
echo "(and qemu-img skips zeros); cat reads a sparse raw file holding the same content."
awk -v c="${best[0]}" -v f="$T_FLAT" -v f2="${best[2]}" -v d=$DEPTH 'BEGIN {
    r = c / f
    printf "headline: depth-%d chain / flat = %.2fx (target <= 1.5x: %s); chain / flat2m = %.2fx\n", d, r, (r <= 1.5 ? "met" : "NOT met"), c / f2 }'
echo
echo "done."

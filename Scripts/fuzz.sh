#!/usr/bin/env bash
# libFuzzer run of the read-only open path (Scripts/fuzz/FuzzOpen.swift).
#
#   Scripts/fuzz.sh              build, make the seed corpus, fuzz for $FUZZ_SECONDS (default 300)
#   Scripts/fuzz.sh FILE...      build, then run the harness once on each FILE (reproduce a finding)
#
# Exits non-zero when the fuzzer finds a crash, leak, timeout or out-of-memory input, after
# printing each reproducer's path, the failure and the first project frame of its stack (full
# symbolized, demangled traces go to $FUZZ_WORK/traces/).
#
# Seeds: qemu-img images and the fixtures of ../shared/fixtures cut to <= 8 MiB, each also in the
# harness's compact "sparse" input form (see FuzzOpen.swift). The binary is built from a snapshot
# of Sources/ in $FUZZ_BUILD_DIR/src, so traces keep pointing at the code that was fuzzed.
#
# Environment:
#   FUZZ_SECONDS    total fuzzing time (default 300)
#   FUZZ_FORK       libFuzzer -fork jobs (default: CPU count, at most 4). In fork mode a finding is
#                   saved and fuzzing goes on, so one run reports every problem; 0 = classic mode,
#                   which stops at the first.
#   VHDX_FUZZ_SKIP  comma list of harness steps to leave out, to get past a known bug:
#                   summary, extents, reads, check, fixup (see Scripts/fuzz/FuzzOpen.swift)
#   FUZZ_WORK       seeds, corpus and log (default /tmp/vhdx-fuzz)
#   FUZZ_ARTIFACTS  where reproducers go (default /tmp/fuzz-crashes)
#   FUZZ_BUILD_DIR  build output (default .build-fuzz, gitignored)
#   FUZZ_ARGS       extra libFuzzer flags
#   SWIFTC          the compiler (default /opt/swift/usr/bin/swiftc, else swiftc on PATH)
#   VHDX_FUZZ_VERBOSE=1, VHDX_FUZZ_DUMP_FIXED=PATH   triage aids for reproduce mode (FuzzOpen.swift)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-300}
FUZZ_FORK=${FUZZ_FORK:-$(n=$(nproc 2>/dev/null || echo 1); echo $((n > 4 ? 4 : n)))}
FUZZ_WORK=${FUZZ_WORK:-/tmp/vhdx-fuzz}
FUZZ_ARTIFACTS=${FUZZ_ARTIFACTS:-/tmp/fuzz-crashes}
BUILD=${FUZZ_BUILD_DIR:-$ROOT/.build-fuzz}
FIXTURES=${FUZZ_FIXTURES:-$ROOT/../shared/fixtures}
MAX_LEN=8388608
# Bump when make_seeds changes, so an old seed directory is rebuilt.
SEED_RECIPE=2

if [[ -z "${SWIFTC:-}" ]]; then
    if [[ -x /opt/swift/usr/bin/swiftc ]]; then SWIFTC=/opt/swift/usr/bin/swiftc; else SWIFTC=$(command -v swiftc); fi
fi
TOOLBIN=$(dirname "$SWIFTC")
DEMANGLE=$TOOLBIN/swift-demangle
[[ -x "$DEMANGLE" ]] || DEMANGLE=cat
[[ "$DEMANGLE" == cat ]] || DEMANGLE="$DEMANGLE --simplified"
if [[ -x "$TOOLBIN/llvm-symbolizer" ]]; then export ASAN_SYMBOLIZER_PATH=$TOOLBIN/llvm-symbolizer; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-symbolize=1:detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
# Swift's own crash backtracer would catch the trap first, then hang under ASan: leave crashes to
# libFuzzer, which prints the stack and saves the input.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}

log() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build: VHDXFormat as its own module (object + .swiftmodule), then the engine sources and the
# harness as one module named VHDX, so `import VHDXFormat` resolves without touching Sources/.
# ---------------------------------------------------------------------------------------------
build() {
    mkdir -p "$BUILD"
    local bin=$BUILD/fuzz-open src=$BUILD/src
    # Compile a snapshot of the sources, not the live tree: the binary, its line numbers and every
    # reproducer's trace then refer to files that stay put while Sources/ is edited.
    local fresh=$BUILD/src.new
    rm -rf "$fresh"
    mkdir -p "$fresh/Sources" "$fresh/Scripts/fuzz"
    cp -R "$ROOT/Sources/VHDXFormat" "$ROOT/Sources/VHDX" "$fresh/Sources/"
    cp "$ROOT/Scripts/fuzz/FuzzOpen.swift" "$fresh/Scripts/fuzz/"
    cp "$ROOT/Scripts/fuzz.sh" "$fresh/Scripts/"
    if [[ -x "$bin" ]] && [[ -d "$src" ]] && diff -r -q "$src" "$fresh" >/dev/null 2>&1; then
        rm -rf "$fresh"
        log "harness is up to date: $bin (sources as of $(cat "$src/SNAPSHOT_TIME" 2>/dev/null))"
        return
    fi
    date -u +%Y-%m-%dT%H:%M:%SZ > "$fresh/SNAPSHOT_TIME"
    rm -rf "$src"
    mv "$fresh" "$src"
    (cd "$src" && find Sources Scripts -type f | sort | xargs sha256sum > "$BUILD/sources.sha256")

    local format_sources engine_sources
    mapfile -t format_sources < <(find "$src/Sources/VHDXFormat" -name '*.swift' | sort)
    mapfile -t engine_sources < <(find "$src/Sources/VHDX" -name '*.swift' | sort)
    local flags=(-swift-version 6 -parse-as-library -O -g -sanitize=fuzzer,address)
    # lld: gold warns about every ASan check thunk it cannot export.
    local link_flags=()
    [[ -x "$TOOLBIN/ld.lld" ]] && link_flags=(-use-ld=lld)
    rm -f "$bin"
    log "compiling VHDXFormat (${#format_sources[@]} files, snapshot in $src)"
    "$SWIFTC" "${flags[@]}" -module-name VHDXFormat -wmo -c \
        -emit-module -emit-module-path "$BUILD/VHDXFormat.swiftmodule" \
        -o "$BUILD/VHDXFormat.o" "${format_sources[@]}"
    log "compiling VHDX + FuzzOpen.swift (${#engine_sources[@]} + 1 files) and linking"
    "$SWIFTC" "${flags[@]}" -module-name VHDX -I "$BUILD" \
        "${engine_sources[@]}" "$src/Scripts/fuzz/FuzzOpen.swift" "$BUILD/VHDXFormat.o" "${link_flags[@]}" \
        -o "$bin.tmp"
    mv "$bin.tmp" "$bin"
    log "built $bin"
}

# ---------------------------------------------------------------------------------------------
# Seed corpus: small valid images from qemu-img, and the real-world fixtures cut to <= 8 MiB.
# ---------------------------------------------------------------------------------------------

# python3 helpers that patch seeds (CRC-32C fix-ups); skipped when python3 is missing.
PATCHER='
import struct, sys
T = []
for i in range(256):
    c = i
    for _ in range(8): c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b: c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
def log_entries(d):
    ll, lo = struct.unpack_from("<IQ", d, 0x10000 + 68)
    for p in range(0, ll, 4096):
        if d[lo + p:lo + p + 4] == b"loge": yield lo + p
def fix_entry(d, at):
    n, = struct.unpack_from("<I", d, at + 8)
    struct.pack_into("<I", d, at + 4, 0)
    struct.pack_into("<I", d, at + 4, crc32c(bytes(d[at:at + n])))
cmd, src, dst = sys.argv[1:4]
d = bytearray(open(src, "rb").read())
if cmd == "dirtylog":
    # Keep the 4 MiB that hold the header section, log, BAT and metadata; make the pending
    # entry claim no more than that, so the cut file still replays instead of reading as truncated.
    size = 4 << 20
    d = d[:size]
    for at in log_entries(d):
        struct.pack_into("<QQ", d, at + 48, size, size)
        fix_entry(d, at)
elif cmd == "compact":
    # Move every FULLY_PRESENT block to the first free MiB after the metadata region and cut the
    # file there, so a qemu image with data fits in -max_len with its blocks inside the file.
    bat_off = None
    rt = 0x30000
    n, = struct.unpack_from("<I", d, rt + 8)
    for i in range(n):
        e = rt + 16 + 32 * i
        off, ln = struct.unpack_from("<QI", d, e + 16)
        if d[e:e + 16] == bytes.fromhex("6677c22d23f600429d64115e9bfd4a08"): bat_off, bat_len = off, ln
    end = 0
    for i in range(n):
        off, ln = struct.unpack_from("<QI", d, rt + 16 + 32 * i + 16)
        end = max(end, off + ln)
    block = int(sys.argv[4]) << 20
    out = d[:end]
    for i in range(bat_len // 8):
        v, = struct.unpack_from("<Q", d, bat_off + 8 * i)
        if v & 7 == 6 and v >> 20:
            src_off = (v >> 20) << 20
            new_off = len(out)
            out += d[src_off:src_off + block]
            out += bytes(block - (len(out) - new_off))
            struct.pack_into("<Q", out, bat_off + 8 * i, (new_off >> 20) << 20 | 6)
    d = out
elif cmd == "sparse":
    # The sparse input form of FuzzOpen.swift: magic, u32 size in 512-byte units, then
    # (u32 offset, u16 length, bytes) for each run of non-zero 512-byte sectors.
    assert len(d) % 512 == 0
    out = bytearray(b"VHDXSPAR") + struct.pack("<I", len(d) // 512)
    i, n = 0, len(d)
    while i < n:
        if not any(d[i:i + 512]):
            i += 512
            continue
        j = i
        while j < n and j - i < 65024 and any(d[j:j + 512]): j += 512
        out += struct.pack("<IH", i, j - i) + d[i:j]
        i = j
    d = out
open(dst, "wb").write(bytes(d))
'

make_seeds() {
    local seeds=$FUZZ_WORK/seeds
    if [[ -d "$seeds" ]] && [[ "$(cat "$FUZZ_WORK/seeds.recipe" 2>/dev/null)" == "$SEED_RECIPE" ]]; then
        log "seed corpus: $seeds ($(ls "$seeds" | wc -l) files, kept from an earlier run)"
        return
    fi
    rm -rf "$seeds"
    mkdir -p "$seeds"
    local tmp=$FUZZ_WORK/seed-build
    rm -rf "$tmp"; mkdir -p "$tmp"
    local have_py=0
    command -v python3 >/dev/null && have_py=1

    if command -v qemu-img >/dev/null; then
        # qemu pads new images to 8 MiB of which only the first 4 hold structures (header section,
        # log, BAT, metadata): keep those 4, since every run costs time per input byte.
        local spec
        for spec in 4M:1M 8M:1M 64M:8M; do
            qemu-img create -q -f vhdx -o block_size=${spec#*:},log_size=1M "$tmp/e.vhdx" "${spec%:*}"
            head -c $((4 << 20)) "$tmp/e.vhdx" > "$seeds/qemu-dynamic-${spec%:*}-b${spec#*:}.vhdx"
        done
        qemu-img create -q -f vhdx -o block_size=1M,log_size=1M,subformat=fixed "$tmp/fixed.vhdx" 4M
        head -c $MAX_LEN "$tmp/fixed.vhdx" > "$seeds/qemu-fixed-4M-cut8M.vhdx"
        if command -v qemu-io >/dev/null && [[ $have_py == 1 ]]; then
            # Data blocks (FULLY_PRESENT, a ZERO write, unwritten), moved inside 8 MiB.
            qemu-img create -q -f vhdx -o block_size=1M,log_size=1M "$tmp/data.vhdx" 4M
            qemu-io -f vhdx -c 'write -P 0xa5 0 1M' -c 'write -P 0x5a 2M 4k' -c 'write -z 3M 1M' \
                "$tmp/data.vhdx" >/dev/null
            python3 -c "$PATCHER" compact "$tmp/data.vhdx" "$seeds/qemu-dynamic-4M-data.vhdx" 1
        fi
    else
        log "warning: qemu-img not found; no qemu seeds"
    fi

    if [[ -d "$FIXTURES" ]]; then
        local f name
        for f in "$FIXTURES"/*.vhdx.gz "$FIXTURES"/*.avhdx.gz; do
            [[ -e "$f" ]] || continue
            name=$(basename "$f" .gz)
            gzip -dc "$f" > "$tmp/$name"
            if [[ "$name" == iotest-dirtylog-* ]]; then
                if [[ $have_py == 1 ]]; then
                    python3 -c "$PATCHER" dirtylog "$tmp/$name" "$seeds/${name%.*}-cut4M-replayable.${name##*.}"
                fi
            fi
            # Every structure of these fixtures lies in the first 4 MiB; later blocks are cut off.
            head -c $((4 << 20)) "$tmp/$name" > "$seeds/${name%.*}-cut4M.${name##*.}"
            # These also have data blocks (or sector bitmaps) inside their first 8 MiB.
            case "$name" in
                fixed.vhdx|dynamic.vhdx|differencing.avhdx)
                    head -c $MAX_LEN "$tmp/$name" > "$seeds/${name%.*}-cut8M.${name##*.}" ;;
            esac
            rm -f "$tmp/$name"
        done
    else
        log "warning: fixtures not found at $FIXTURES"
    fi
    if [[ $have_py == 1 ]]; then
        # The same images in the harness's sparse form: a few KiB each instead of megabytes.
        local s
        for s in "$seeds"/*; do
            python3 -c "$PATCHER" sparse "$s" "$seeds/sparse-$(basename "$s")"
        done
    fi
    rm -rf "$tmp"
    echo "$SEED_RECIPE" > "$FUZZ_WORK/seeds.recipe"
    log "seed corpus: $seeds ($(ls "$seeds" | wc -l) files)"
}

# Re-runs a reproducer, keeps its demangled trace in $FUZZ_WORK/traces, and prints one line:
# the path, the kind of failure and the first frame in the project's sources (the dedup key).
report_artifact() {
    local a=$1 trace kind frame
    mkdir -p "$FUZZ_WORK/traces"
    trace=$FUZZ_WORK/traces/$(basename "$a").txt
    timeout 120 "$BUILD/fuzz-open" -timeout=10 -rss_limit_mb=2048 "$a" 2>&1 | $DEMANGLE > "$trace" || true
    # The most specific cause first: a Swift trap shows as libFuzzer's "deadly signal" too.
    kind=$(grep -oE 'Swift runtime failure: [^/]*|Fatal error: [^/]*' "$trace" | head -n 1 | sed 's/ *$//')
    [[ -n "$kind" ]] || kind=$(grep -oE 'ERROR: AddressSanitizer: [a-z-]+|ERROR: LeakSanitizer|ERROR: libFuzzer: [a-z -]+|out-of-memory' "$trace" \
        | head -n 1 | sed 's/ *$//')
    frame=$(grep -E '#[0-9]+ 0x' "$trace" | grep -E "$BUILD/src/(Sources|Scripts)" | head -n 1 \
        | sed -E 's/.* in (.*) ([^ ]+:[0-9]+(:[0-9]+)?)$/\2  \1/; s#'"$BUILD/src"'/##')
    printf '%s\t%s\t%s\n' "${kind:-unknown (see $trace)}" "${frame:-no project frame}" "$a"
}

build

if [[ $# -gt 0 ]]; then
    # Reproduce mode: one run per file, demangled.
    set +e
    "$BUILD/fuzz-open" -timeout=10 -rss_limit_mb=2048 "$@" 2>&1 | $DEMANGLE
    exit "${PIPESTATUS[0]}"
fi

mkdir -p "$FUZZ_WORK/corpus" "$FUZZ_ARTIFACTS"
make_seeds

stamp=$FUZZ_WORK/.start-stamp
touch "$stamp"
fuzz_log=$FUZZ_WORK/fuzz-$(date +%Y%m%d-%H%M%S).log
args=(-max_len=$MAX_LEN -rss_limit_mb=2048 -timeout=10 -max_total_time="$FUZZ_SECONDS"
      -artifact_prefix="$FUZZ_ARTIFACTS/" -print_final_stats=1 -dict="$ROOT/Scripts/fuzz/vhdx.dict")
if [[ "$FUZZ_FORK" != 0 ]]; then
    args+=(-fork="$FUZZ_FORK" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
# shellcheck disable=SC2206
args+=(${FUZZ_ARGS:-})
log "fuzzing for ${FUZZ_SECONDS}s: $BUILD/fuzz-open ${args[*]} $FUZZ_WORK/corpus $FUZZ_WORK/seeds"
log "log: $fuzz_log"
set +e
"$BUILD/fuzz-open" "${args[@]}" "$FUZZ_WORK/corpus" "$FUZZ_WORK/seeds" 2>&1 | tee "$fuzz_log"
status=${PIPESTATUS[0]}
set -e

mapfile -t found < <(find "$FUZZ_ARTIFACTS" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
    -newer "$stamp" | sort)
echo
echo "==================== fuzz summary ===================="
last=$(grep -E '^#[0-9]+' "$fuzz_log" | tail -n 1 || true)
echo "$last"
grep -E 'stat::|^INFO: exiting|Done [0-9]+ runs' "$fuzz_log" | tail -n 8 || true
runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<< "$last")
secs=$(sed -nE 's/.* time: ([0-9]+)s.*/\1/p' <<< "$last")
if [[ -n "$runs" && -n "$secs" && "$secs" -gt 0 ]]; then
    echo "runs: $runs in ${secs}s, average $((runs / secs)) exec/s over all jobs"
fi
echo "libFuzzer exit status: $status; log: $fuzz_log"
if [[ ${#found[@]} -gt 0 ]]; then
    echo "${#found[@]} reproducer(s) in $FUZZ_ARTIFACTS (traces in $FUZZ_WORK/traces):"
    table=$FUZZ_WORK/findings.tsv
    : > "$table"
    for a in "${found[@]}"; do report_artifact "$a" | tee -a "$table"; done
    echo
    echo "distinct problems (failure, first project frame: count):"
    cut -f1,2 "$table" | sort | uniq -c | sort -rn
    echo
    echo "re-run one with: Scripts/fuzz.sh REPRODUCER"
    exit 1
fi
if [[ $status -ne 0 ]]; then
    echo "libFuzzer failed (status $status) without leaving a reproducer; see $fuzz_log"
    exit "$status"
fi
echo "no crashes, leaks, timeouts or OOMs"

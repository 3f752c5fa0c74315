#!/usr/bin/env bash
# libFuzzer harnesses for every parser of untrusted bytes (Scripts/fuzz/Fuzz*.swift).
#
#   Scripts/fuzz.sh --list                      the harness names, one per line
#   Scripts/fuzz.sh [--harness NAME]            build, make the seeds, fuzz for $FUZZ_SECONDS (default 300)
#   Scripts/fuzz.sh [--harness NAME] FILE...    build, then run the harness once on each FILE (reproduce)
#
# NAME defaults to `open`. Harnesses (each one binary, $FUZZ_BUILD_DIR/fuzz-NAME):
#   open       VHDXFile open + BAT walks + reads + Checker.check on an in-memory image (FuzzOpen.swift)
#   stream     the export stream reader: header record, data/zero records, trailer, a whole stream,
#              every record's body checked as restore checks it (FuzzStream.swift)
#   origin     the export origin record of exported/restored images (FuzzOrigin.swift)
#   set        the .vhds set file: both copies, SetRecordCodec, SetFile (FuzzSet.swift)
#   tracking   the change-tracking region: TrackingHeader, the stored run lists, and a tracker
#              attached to an in-memory image holding the region (FuzzTracking.swift)
#   locator    the parent locator item and the parent path candidates derived from it
#              (ParentLocator, ParentPaths; FuzzLocator.swift)
#   bytecount  the CLI's size parser (ByteCount.parse; FuzzByteCount.swift)
#
# Exits non-zero when the fuzzer finds a crash, leak, timeout (> 10 s) or out-of-memory input
# (over -rss_limit_mb / -malloc_limit_mb 2048), after printing each reproducer's path, the failure
# and the first project frame of its stack (full symbolized, demangled traces go to
# $FUZZ_WORK/NAME/traces/).
#
# How it is built (swiftc, not SwiftPM): each library target is compiled once as its own module
# (-O -sanitize=fuzzer,address -enable-testing, whole-module), in dependency order, from a
# snapshot of Sources/ in $FUZZ_BUILD_DIR/src, so traces keep pointing at the code that was
# fuzzed; a module is rebuilt only when its sources or a dependency changed. A harness is a small
# module of its own (Scripts/fuzz/FuzzSupport.swift + its Fuzz*.swift, `@testable import` of the
# targets) linked with the module objects of its closure. CCRC32C is compiled with clang; CZlib is
# the system zlib through its module map. The two package dependencies are not rebuilt: swift-crypto
# (VHDXExport's SHA-256; its BoringSSL is far too big to compile with bare swiftc) and
# swift-argument-parser (ByteCount conforms to ExpressibleByArgument) are linked from the package's
# own debug build ($FUZZ_SPM_BUILD, made with `swift build --product vhdx` when missing). They are
# not instrumented, which is right: only our parsers are under test. The same build's `vhdx`
# binary makes the seeds (an image with tracking, streams, an exported image, a set, children).
#
# Seeds: open: qemu-img images and the fixtures of ../shared/fixtures cut to <= 8 MiB, each also in
# the harness's compact "sparse" input form (see FuzzOpen.swift). The others: files made by `vhdx`
# (then cut to the structure under test) and the fixtures' parent locators; see seeds_NAME below.
#
# Environment:
#   FUZZ_SECONDS    total fuzzing time (default 300)
#   FUZZ_FORK       libFuzzer -fork jobs (default: CPU count, at most 4). In fork mode a finding is
#                   saved and fuzzing goes on, so one run reports every problem; 0 = classic mode,
#                   which stops at the first.
#   VHDX_FUZZ_SKIP  (open) comma list of harness steps to leave out, to get past a known bug:
#                   summary, extents, reads, check, fixup (see Scripts/fuzz/FuzzOpen.swift)
#   FUZZ_WORK       seeds, corpus and logs, one folder per harness (default /tmp/vhdx-fuzz)
#   FUZZ_ARTIFACTS  where reproducers go (default /tmp/fuzz-crashes/NAME)
#   FUZZ_BUILD_DIR  build output (default .build-fuzz, gitignored)
#   FUZZ_SPM_BUILD  the SwiftPM debug build the dependencies and `vhdx` come from (default .build/debug)
#   FUZZ_ARGS       extra libFuzzer flags
#   SWIFTC          the compiler (default /opt/swift/usr/bin/swiftc, else swiftc on PATH)
#   VHDX_FUZZ_VERBOSE=1, VHDX_FUZZ_DUMP_FIXED=PATH   triage aids for reproduce mode (FuzzOpen.swift)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-300}
FUZZ_FORK=${FUZZ_FORK:-$(n=$(nproc 2>/dev/null || echo 1); echo $((n > 4 ? 4 : n)))}
FUZZ_WORK_ROOT=${FUZZ_WORK:-/tmp/vhdx-fuzz}
BUILD=${FUZZ_BUILD_DIR:-$ROOT/.build-fuzz}
SPM_BUILD=${FUZZ_SPM_BUILD:-$ROOT/.build/debug}
FIXTURES=${FUZZ_FIXTURES:-$ROOT/../shared/fixtures}

# ---------------------------------------------------------------------------------------------
# The harnesses: the target module each one tests (its closure is linked), its largest input and
# its dictionary. Bump SEED_RECIPE when a seeds_NAME function changes, so old seeds are rebuilt.
# ---------------------------------------------------------------------------------------------
HARNESSES=(open stream origin set tracking locator bytecount)
declare -A H_FILE=([open]=FuzzOpen [stream]=FuzzStream [origin]=FuzzOrigin [set]=FuzzSet
                   [tracking]=FuzzTracking [locator]=FuzzLocator [bytecount]=FuzzByteCount)
declare -A H_MODULE=([open]=VHDX [stream]=VHDXExport [origin]=VHDXExport [set]=VHDXSets
                     [tracking]=VHDXChangeTracking [locator]=VHDX [bytecount]=VHDXTool)
declare -A H_MAX_LEN=([open]=8388608 [stream]=1048576 [origin]=8192 [set]=1114112
                      [tracking]=1048576 [locator]=65536 [bytecount]=256)
declare -A H_DICT=([open]=vhdx.dict [stream]=stream.dict [origin]=stream.dict [set]=set.dict
                   [tracking]=vhdx.dict [locator]=locator.dict [bytecount]=bytecount.dict)
SEED_RECIPE=4

# The library modules: dependencies (in link order), and what each needs from outside.
declare -A M_DEPS=([VHDXFormat]="" [VHDX]="VHDXFormat" [VHDXChangeTracking]="VHDX VHDXFormat"
                   [VHDXSets]="VHDXChangeTracking VHDX VHDXFormat"
                   [VHDXExport]="VHDXSets VHDXChangeTracking VHDX VHDXFormat" [VHDXTool]="")
# VHDXTool: only the parser under test (the rest is the CLI, with its ArgumentParser commands).
declare -A M_SOURCES=([VHDXTool]="Sources/VHDXTool/ByteCount.swift")
# Package dependencies linked from $SPM_BUILD: the .build folders whose objects each one needs.
declare -A M_EXTERNAL=([VHDXExport]="Crypto CryptoBoringWrapper CCryptoBoringSSL CCryptoBoringSSLShims CXKCP CXKCPShims"
                       [VHDXTool]="ArgumentParser ArgumentParserToolInfo")
declare -A M_LIBS=([VHDXExport]="-lz -lstdc++")

if [[ -z "${SWIFTC:-}" ]]; then
    if [[ -x /opt/swift/usr/bin/swiftc ]]; then SWIFTC=/opt/swift/usr/bin/swiftc; else SWIFTC=$(command -v swiftc); fi
fi
TOOLBIN=$(dirname "$SWIFTC")
CLANG=$TOOLBIN/clang
[[ -x "$CLANG" ]] || CLANG=$(command -v clang)
DEMANGLE=$TOOLBIN/swift-demangle
[[ -x "$DEMANGLE" ]] || DEMANGLE=cat
[[ "$DEMANGLE" == cat ]] || DEMANGLE="$DEMANGLE --simplified"
if [[ -x "$TOOLBIN/llvm-symbolizer" ]]; then export ASAN_SYMBOLIZER_PATH=$TOOLBIN/llvm-symbolizer; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-symbolize=1:detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
# Swift's own crash backtracer would catch the trap first, then hang under ASan: leave crashes to
# libFuzzer, which prints the stack and saves the input.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 64; }

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
SWIFT_FLAGS=(-swift-version 6 -parse-as-library -O -g -sanitize=fuzzer,address -enable-testing
             -package-name swift_vhdx)

# Copies Sources/ and Scripts/fuzz to $BUILD/src when they changed (compiles then read the copy,
# so a binary, its line numbers and every trace refer to files that stay put while Sources/ is
# edited).
snapshot_sources() {
    local src=$BUILD/src fresh=$BUILD/src.new
    rm -rf "$fresh"
    mkdir -p "$fresh/Sources" "$fresh/Scripts"
    cp -R "$ROOT/Sources/." "$fresh/Sources/"
    cp -R "$ROOT/Scripts/fuzz" "$fresh/Scripts/"
    rm -rf "$fresh/Sources/VHDX/VHDX.docc"
    if [[ -d "$src" ]] && diff -r -q "$src/Sources" "$fresh/Sources" >/dev/null 2>&1 \
        && diff -r -q "$src/Scripts" "$fresh/Scripts" >/dev/null 2>&1; then
        rm -rf "$fresh"
        return
    fi
    date -u +%Y-%m-%dT%H:%M:%SZ > "$fresh/SNAPSHOT_TIME"
    rm -rf "$src"
    mv "$fresh" "$src"
    log "source snapshot taken: $src"
}

# The package's debug build provides the dependencies' objects and modules, and `vhdx`.
ensure_spm_build() {
    if [[ ! -x "$SPM_BUILD/vhdx" || ! -e "$SPM_BUILD/Modules/Crypto.swiftmodule" ]]; then
        log "building the package (swift build --product vhdx) for its dependencies and vhdx"
        (cd "$ROOT" && swift build --product vhdx) >&2
        SPM_BUILD=$ROOT/.build/debug
    fi
}

# CCRC32C: the C target VHDXFormat imports, with a module map like the one SwiftPM writes.
build_ccrc32c() {
    local out=$BUILD/mod/CCRC32C src=$BUILD/src/Sources/CCRC32C
    mkdir -p "$out"
    local key; key=$(cat "$src"/*.c "$src"/include/*.h | sha256sum | cut -c1-16)
    [[ "$(cat "$out/hash" 2>/dev/null)" == "$key" ]] && return
    log "compiling CCRC32C"
    printf 'module CCRC32C {\n    header "%s"\n    export *\n}\n' "$src/include/crc32c_hw.h" > "$out/module.modulemap"
    "$CLANG" -O2 -g -fsanitize=address -I "$src/include" -c "$src"/*.c -o "$out/crc32c_hw.o"
    echo "$key" > "$out/hash"
}

# Flags that let a module see our C modules and the package dependencies' modules.
import_flags() {
    printf '%s\n' -I "$BUILD/mod" -Xcc -fmodule-map-file="$BUILD/mod/CCRC32C/module.modulemap" \
        -Xcc -fmodule-map-file="$BUILD/src/Sources/CZlib/module.modulemap" -I "$SPM_BUILD/Modules"
}

# Compiles one library module (Sources/NAME, or M_SOURCES[NAME]) after its dependencies, when its
# sources or a dependency's changed: $BUILD/mod/NAME.{o,swiftmodule,hash}.
build_module() {
    local name=$1 dep
    for dep in ${M_DEPS[$name]}; do build_module "$dep"; done
    local src=$BUILD/src files=()
    if [[ -n "${M_SOURCES[$name]:-}" ]]; then
        for f in ${M_SOURCES[$name]}; do files+=("$src/$f"); done
    else
        mapfile -t files < <(find "$src/Sources/$name" -name '*.swift' | sort)
    fi
    local key
    key=$( { printf '%s\n' "${SWIFT_FLAGS[@]}"; cat "${files[@]}"; for dep in ${M_DEPS[$name]}; do cat "$BUILD/mod/$dep.hash"; done; } \
        | sha256sum | cut -c1-16)
    if [[ "$(cat "$BUILD/mod/$name.hash" 2>/dev/null)" == "$key" && -e "$BUILD/mod/$name.o" ]]; then return; fi
    local imports; mapfile -t imports < <(import_flags)
    log "compiling $name (${#files[@]} files)"
    rm -f "$BUILD/mod/$name.hash"
    "$SWIFTC" "${SWIFT_FLAGS[@]}" "${imports[@]}" -module-name "$name" -wmo -c \
        -emit-module -emit-module-path "$BUILD/mod/$name.swiftmodule" -o "$BUILD/mod/$name.o" "${files[@]}"
    echo "$key" > "$BUILD/mod/$name.hash"
}

# Builds $BUILD/fuzz-NAME: the harness module over its target's closure, linked.
build_harness() {
    local h=$1 top=${H_MODULE[$1]}
    mkdir -p "$BUILD/mod"
    # One build at a time in $BUILD (two harnesses are often fuzzed side by side); released
    # when the script exits.
    exec 9> "$BUILD/.lock"
    flock 9
    snapshot_sources
    [[ -n "${M_EXTERNAL[$top]:-}" ]] && ensure_spm_build
    build_ccrc32c
    build_module "$top"
    local bin=$BUILD/fuzz-$h src=$BUILD/src
    local closure=("$top" ${M_DEPS[$top]})
    local files=("$src/Scripts/fuzz/FuzzSupport.swift" "$src/Scripts/fuzz/${H_FILE[$h]}.swift")
    local key m
    key=$( { cat "${files[@]}"; for m in "${closure[@]}"; do cat "$BUILD/mod/$m.hash"; done; } | sha256sum | cut -c1-16)
    if [[ -x "$bin" && "$(cat "$bin.hash" 2>/dev/null)" == "$key" ]]; then
        log "harness is up to date: $bin (sources as of $(cat "$src/SNAPSHOT_TIME" 2>/dev/null))"
        return
    fi
    local objects=() libs=() ext
    # VHDXFormat's module imports are needed by every harness (FuzzSupport's checksum fix-up).
    [[ " ${closure[*]} " == *" VHDXFormat "* ]] || { build_module VHDXFormat; closure+=(VHDXFormat); }
    for m in "${closure[@]}"; do
        objects+=("$BUILD/mod/$m.o")
        for ext in ${M_EXTERNAL[$m]:-}; do
            mapfile -t -O "${#objects[@]}" objects < <(find "$SPM_BUILD/$ext.build" -name '*.o' | sort)
        done
        # shellcheck disable=SC2206
        libs+=(${M_LIBS[$m]:-})
    done
    objects+=("$BUILD/mod/CCRC32C/crc32c_hw.o")
    local imports; mapfile -t imports < <(import_flags)
    # lld: gold warns about every ASan check thunk it cannot export.
    local link_flags=()
    [[ -x "$TOOLBIN/ld.lld" ]] && link_flags=(-use-ld=lld)
    log "compiling and linking fuzz-$h (${H_FILE[$h]}.swift over $top)"
    rm -f "$bin"
    "$SWIFTC" "${SWIFT_FLAGS[@]}" "${imports[@]}" -module-name "${H_FILE[$h]}" \
        "${files[@]}" "${objects[@]}" "${link_flags[@]}" "${libs[@]}" -o "$bin.tmp"
    mv "$bin.tmp" "$bin"
    echo "$key" > "$bin.hash"
    log "built $bin"
}

# ---------------------------------------------------------------------------------------------
# Seed corpora
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
# The open path: qemu-img images and the fixtures cut to <= 8 MiB, each also in sparse form.
seeds_open() {
    local seeds=$1 tmp=$2
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
}

# Files `vhdx` makes, shared by the seed functions below: a tracked image with sealed epochs
# (stored run lists), a full and an incremental stream, an exported and a restored image (origin
# records), a set with checkpoints, and a differencing child (its parent locator).
make_files() {
    local made=$FUZZ_WORK_ROOT/made
    [[ "$(cat "$made/recipe" 2>/dev/null)" == "$SEED_RECIPE" ]] && return
    ensure_spm_build
    local v=$SPM_BUILD/vhdx
    rm -rf "$made"; mkdir -p "$made/sub"
    log "making seed files with $v in $made"
    (
        set -e
        cd "$made"
        "$v" create img.vhdx 16M --block-size 1M >/dev/null
        "$v" write img.vhdx --offset 0 --pattern 0xa5 --length 8K >/dev/null
        "$v" track enable img.vhdx --granule 64K --history 4 >/dev/null
        "$v" write img.vhdx --offset 1M --pattern 0x11 --length 4K >/dev/null
        "$v" track seal img.vhdx >/dev/null
        "$v" write img.vhdx --offset 3M --pattern 0x22 --length 4K >/dev/null
        "$v" write img.vhdx --offset 12M --zero --length 1M >/dev/null
        "$v" export img.vhdx full.vxs >/dev/null
        cp img.vhdx tracked-sealed.vhdx
        "$v" write img.vhdx --offset 5M --pattern 0x33 --length 64K >/dev/null
        "$v" write img.vhdx --offset 9M --trim --length 1M >/dev/null
        "$v" export img.vhdx inc.vxs --base full.vxs >/dev/null
        cp img.vhdx tracked-dirty.vhdx
        "$v" export img.vhdx exported.vhdx >/dev/null
        "$v" restore restored.vhdx full.vxs inc.vxs >/dev/null
        "$v" create small.vhdx 4M >/dev/null
        "$v" track enable small.vhdx >/dev/null
        "$v" export small.vhdx empty.vxs >/dev/null
        "$v" create sub/child.avhdx --parent img.vhdx >/dev/null
        "$v" set create one.vhds 16M >/dev/null
        cp one.vhds one-created.vhds
        "$v" set checkpoint one.vhds >/dev/null
        "$v" set checkpoint one.vhds >/dev/null
    ) >&2 || die "making the seed files failed (see above)"
    echo "$SEED_RECIPE" > "$made/recipe"
}

# python3 helpers that cut structures out of the files above.
CUTTER='
import struct, sys, gzip
def guid(s):
    a, b, c, d, e = s.split("-")
    return struct.pack("<IHH", int(a, 16), int(b, 16), int(c, 16)) + bytes.fromhex(d + e)
def regions(d):
    n, = struct.unpack_from("<I", d, 0x30000 + 8)
    for i in range(n):
        e = 0x30000 + 16 + 32 * i
        yield d[e:e + 16], struct.unpack_from("<QI", d, e + 16)
def region(d, g):
    for gid, (off, ln) in regions(d):
        if gid == guid(g): return off, ln
    return None
def metadata_item(d, g):
    off, ln = region(d, "8b7ca206-4790-4b9a-b8fe-575f050f886e")
    n, = struct.unpack_from("<H", d, off + 10)
    for i in range(n):
        e = off + 32 + 32 * i
        if d[e:e + 16] == guid(g):
            io, il = struct.unpack_from("<II", d, e + 16)
            return d[off + io:off + io + il]
cmd, src, dst = sys.argv[1:4]
d = (gzip.open if src.endswith(".gz") else open)(src, "rb").read()
if cmd == "origin":
    off, ln = region(d, "0faf8a1a-b3d4-45fc-a8a6-7bf52d9528c2")
    out = d[off:off + 4096]
elif cmd == "locator":
    out = metadata_item(d, "a8d35f2d-b30b-454d-abf7-d3d84834ab0c")
    if out is None: sys.exit(0)  # not a differencing image (the first backing file of a set)
elif cmd == "pad512":
    out = d + bytes(-len(d) % 512)
open(dst, "wb").write(out)
'
extract() { python3 -c "$CUTTER" "$@"; }
sparse() { python3 -c "$PATCHER" sparse "$@"; }

seeds_stream() {
    local seeds=$1 made=$FUZZ_WORK_ROOT/made
    make_files
    cp "$made"/full.vxs "$made"/inc.vxs "$made"/empty.vxs "$seeds/"
}

seeds_origin() {
    local seeds=$1 made=$FUZZ_WORK_ROOT/made
    make_files
    extract origin "$made/exported.vhdx" "$seeds/exported.origin"
    extract origin "$made/restored.vhdx" "$seeds/restored.origin"
}

seeds_set() {
    local seeds=$1 made=$FUZZ_WORK_ROOT/made f
    make_files
    for f in one-created one; do
        cp "$made/$f.vhds" "$seeds/$f.vhds"
        extract pad512 "$made/$f.vhds" "$seeds/.padded"
        sparse "$seeds/.padded" "$seeds/sparse-$f.vhds"
    done
    rm -f "$seeds/.padded"
}

seeds_tracking() {
    local seeds=$1 made=$FUZZ_WORK_ROOT/made f
    make_files
    for f in tracked-sealed tracked-dirty small; do
        sparse "$made/$f.vhdx" "$seeds/sparse-$f.vhdx"
    done
}

seeds_locator() {
    local seeds=$1 made=$FUZZ_WORK_ROOT/made f
    make_files
    extract locator "$made/sub/child.avhdx" "$seeds/child.locator"
    for f in "$made"/*.avhdx "$FIXTURES"/*.avhdx.gz; do
        [[ -e "$f" ]] && extract locator "$f" "$seeds/$(basename "${f%.gz}").locator"
    done
    # Hand-made locators for the Windows path forms the parser maps (WSL drive, volume GUID).
    python3 - "$seeds" <<'PY'
import struct, sys
def locator(pairs):
    hdr = bytes.fromhex("b7ef4ab0d7e1a94f855f0a89c0b9c0fa")  # any GUID: the harness reads any type
    enc = [(k.encode("utf-16-le"), v.encode("utf-16-le")) for k, v in pairs]
    off = 20 + 12 * len(enc)
    entries, data = b"", b""
    for k, v in enc:
        entries += struct.pack("<IIHH", off + len(data), off + len(data) + len(k), len(k), len(v))
        data += k + v
    return hdr + struct.pack("<HH", 0, len(enc)) + entries + data
seeds = sys.argv[1]
open(seeds + "/windows.locator", "wb").write(locator([
    ("parent_linkage", "{01234567-89ab-cdef-0123-456789abcdef}"),
    ("relative_path", "..\\gold\\base.vhdx"),
    ("volume_path", "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\vms\\base.vhdx"),
    ("absolute_win32_path", "\\\\?\\C:\\vms\\base.vhdx")]))
PY
}

seeds_bytecount() {
    local seeds=$1 s i=0
    for s in 0 1 512 4096 1K 1k 1KiB 32M 1.5G 0.5K 0x1000 0X10m 16T 18446744073709551615 1.25M " 64M " 10MB -5 1e3 4096B 2tib .5M; do
        printf '%s' "$s" > "$seeds/$((i++))"
    done
}

# Builds $FUZZ_WORK/NAME/seeds with seeds_NAME, unless it holds this recipe's seeds already.
make_seeds() {
    local h=$1 seeds=$FUZZ_WORK/seeds
    if [[ -d "$seeds" ]] && [[ "$(cat "$FUZZ_WORK/seeds.recipe" 2>/dev/null)" == "$SEED_RECIPE" ]]; then
        log "seed corpus: $seeds ($(ls "$seeds" | wc -l) files, kept from an earlier run)"
        return
    fi
    command -v python3 >/dev/null || [[ $h == open || $h == bytecount ]] || die "python3 is needed to cut the $h seeds"
    rm -rf "$seeds" "$FUZZ_WORK/seed-build"
    mkdir -p "$seeds" "$FUZZ_WORK/seed-build"
    "seeds_$h" "$seeds" "$FUZZ_WORK/seed-build"
    rm -rf "$FUZZ_WORK/seed-build"
    echo "$SEED_RECIPE" > "$FUZZ_WORK/seeds.recipe"
    log "seed corpus: $seeds ($(ls "$seeds" | wc -l) files)"
}

# Re-runs a reproducer, keeps its demangled trace in $FUZZ_WORK/traces, and prints one line:
# the path, the kind of failure and the first frame in the project's sources (the dedup key).
report_artifact() {
    local a=$1 trace kind frame
    mkdir -p "$FUZZ_WORK/traces"
    trace=$FUZZ_WORK/traces/$(basename "$a").txt
    timeout 120 "$BIN" -timeout=10 -rss_limit_mb=2048 "$a" 2>&1 | $DEMANGLE > "$trace" || true
    # The most specific cause first: a Swift trap shows as libFuzzer's "deadly signal" too.
    kind=$(grep -oE 'Swift runtime failure: [^/]*|Fatal error: [^/]*' "$trace" | head -n 1 | sed 's/ *$//')
    [[ -n "$kind" ]] || kind=$(grep -oE 'ERROR: AddressSanitizer: [a-z-]+|ERROR: LeakSanitizer|ERROR: libFuzzer: [a-z -]+|out-of-memory' "$trace" \
        | head -n 1 | sed 's/ *$//')
    frame=$(grep -E '#[0-9]+ 0x' "$trace" | grep -E "$BUILD/src/(Sources|Scripts/fuzz/Fuzz[A-Z])" | grep -v FuzzSupport | head -n 1 \
        | sed -E 's/.* in (.*) ([^ ]+:[0-9]+(:[0-9]+)?)$/\2  \1/; s#'"$BUILD/src"'/##')
    printf '%s\t%s\t%s\n' "${kind:-unknown (see $trace)}" "${frame:-no project frame}" "$a"
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
HARNESS=open
case "${1:-}" in
    --list) printf '%s\n' "${HARNESSES[@]}"; exit 0 ;;
    --harness)
        [[ $# -ge 2 ]] || die "--harness needs a NAME (one of: ${HARNESSES[*]})"
        HARNESS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
[[ -n "${H_FILE[$HARNESS]:-}" ]] || die "no harness \"$HARNESS\" (one of: ${HARNESSES[*]})"
FUZZ_WORK=$FUZZ_WORK_ROOT/$HARNESS
FUZZ_ARTIFACTS=${FUZZ_ARTIFACTS:-/tmp/fuzz-crashes/$HARNESS}
MAX_LEN=${H_MAX_LEN[$HARNESS]}
BIN=$BUILD/fuzz-$HARNESS

build_harness "$HARNESS"
exec 9>&-

if [[ $# -gt 0 ]]; then
    # Reproduce mode: one run per file, demangled.
    set +e
    "$BIN" -timeout=10 -rss_limit_mb=2048 "$@" 2>&1 | $DEMANGLE
    exit "${PIPESTATUS[0]}"
fi

mkdir -p "$FUZZ_WORK/corpus" "$FUZZ_ARTIFACTS"
make_seeds "$HARNESS"

stamp=$FUZZ_WORK/.start-stamp
touch "$stamp"
fuzz_log=$FUZZ_WORK/fuzz-$(date +%Y%m%d-%H%M%S).log
args=(-max_len="$MAX_LEN" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_total_time="$FUZZ_SECONDS"
      -artifact_prefix="$FUZZ_ARTIFACTS/" -print_final_stats=1 -dict="$ROOT/Scripts/fuzz/${H_DICT[$HARNESS]}")
if [[ "$FUZZ_FORK" != 0 ]]; then
    args+=(-fork="$FUZZ_FORK" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
# shellcheck disable=SC2206
args+=(${FUZZ_ARGS:-})
log "fuzzing $HARNESS for ${FUZZ_SECONDS}s: $BIN ${args[*]} $FUZZ_WORK/corpus $FUZZ_WORK/seeds"
log "log: $fuzz_log"
set +e
"$BIN" "${args[@]}" "$FUZZ_WORK/corpus" "$FUZZ_WORK/seeds" 2>&1 | tee "$fuzz_log"
status=${PIPESTATUS[0]}
set -e

mapfile -t found < <(find "$FUZZ_ARTIFACTS" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
    -newer "$stamp" | sort)
echo
echo "==================== fuzz summary ($HARNESS) ===================="
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
    echo "re-run one with: Scripts/fuzz.sh --harness $HARNESS REPRODUCER"
    exit 1
fi
if [[ $status -ne 0 ]]; then
    echo "libFuzzer failed (status $status) without leaving a reproducer; see $fuzz_log"
    exit "$status"
fi
echo "no crashes, leaks, timeouts or OOMs"

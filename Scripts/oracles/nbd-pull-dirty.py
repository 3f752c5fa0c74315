#!/usr/bin/python3
"""A pull-backup client (libnbd): copies the ranges an NBD meta context marks (bit 0: dirty for
qemu:dirty-bitmap:ID) from URI into OUT at their offsets, as virtnbdbackup and OpenNebula do.
Prints "<bytes> bytes in <n> extents". Exit 3 when the server does not offer the context.

    nbd-pull-dirty.py URI CONTEXT OUT
"""
import sys
import nbd

uri, ctx, out = sys.argv[1], sys.argv[2], sys.argv[3]
h = nbd.NBD()
h.add_meta_context(ctx)
h.connect_uri(uri)
if not h.can_meta_context(ctx):
    print(f"the server does not offer {ctx}", file=sys.stderr)
    sys.exit(3)
size = h.get_size()
marked, off = [], 0
while off < size:
    got = []

    def extents(name, offset, entries, err):
        if name == ctx:
            got.extend(entries)
        return 0

    h.block_status(min(size - off, 1 << 30), off, extents)
    if not got:
        sys.exit(f"no extents at {off}")
    for i in range(0, len(got), 2):
        if got[i + 1] & 1:
            marked.append((off, got[i]))
        off += got[i]
with open(out, "r+b") as f:
    for o, n in marked:
        for at in range(o, o + n, 8 << 20):
            k = min(o + n - at, 8 << 20)
            f.seek(at)
            f.write(h.pread(k, at))
h.shutdown()
print(f"{sum(n for _, n in marked)} bytes in {len(marked)} extents")

# The SHA-256 of a VHDX chain's virtual disk as libvhdi (pyvhdi) reads it: the paths given top
# first, each layer's parent set to the next. An oracle nobody here wrote, used by demo.sh and
# the interop tests. Run with /usr/bin/python3 (pyvhdi is only installed for it).
import hashlib
import sys

import pyvhdi

files = []
for path in sys.argv[1:]:
    f = pyvhdi.file()
    f.open(path)
    files.append(f)
for child, parent in zip(files, files[1:]):
    child.set_parent(parent)
top = files[0]
size = top.get_media_size()
h = hashlib.sha256()
done = 0
while done < size:
    b = top.read_buffer(min(1 << 20, size - done))
    h.update(b)
    done += len(b)
print(h.hexdigest())

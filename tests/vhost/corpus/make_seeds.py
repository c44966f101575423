#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_vhost_msg.c and fuzz_vring.c (see the
input formats there).  Run from anywhere; rewrites corpus/vhost_msg/ and
corpus/vring/ beside this script."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def msg(req, payload=b"", flags=0x1, nfds=0):
    return bytes([nfds]) + struct.pack("<III", req, flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


NEED = 0x1 | 0x8
session = b"".join([
    msg(1), msg(15), msg(16, u64(0x209)), msg(17), msg(3),
    msg(24, struct.pack("<III", 0, 60, 0) + bytes(60)),
    msg(2, u64((1 << 32) | (1 << 28) | (1 << 29) | (1 << 30) | (1 << 9))),
    msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 65536, 0x7f0000000000, 0),
        flags=NEED, nfds=1),
    msg(8, state(0, 128)), msg(10, state(0, 0)),
    msg(9, struct.pack("<IIQQQQ", 0, 0, 0x7f0000000000, 0x7f0000000a00,
                       0x7f0000000800, 0)),
    msg(12, u64(0x100)), msg(13, u64(0x100)), msg(18, state(0, 1), flags=NEED),
    msg(11, state(0, 0)), msg(4), msg(25, struct.pack("<III", 32, 1, 0) + b"\1"),
    msg(99, b"x" * 8, flags=NEED),
])
bad = b"".join([
    msg(5, struct.pack("<II", 9, 0)), msg(8, state(77, 3)),
    msg(24, struct.pack("<III", 250, 60, 0) + bytes(60)),
    msg(12, u64(0x5)), msg(1, flags=0x2),
])

GPA = 0x1000
VIRTQ_NEXT, VIRTQ_WRITE, VIRTQ_INDIRECT = 1, 2, 4


def ring_image(num, chains, event_idx=False, ro=False, extra=b""):
    """chains: list of lists of (offset-in-memory, len, flags); descriptors
    are numbered in order, NEXT links added.  Returns a fuzz input."""
    mem = bytearray(8192)
    descs = []
    heads = []
    for chain in chains:
        heads.append(len(descs))
        for j, (off, ln, fl) in enumerate(chain):
            nxt = len(descs) + 1 if j + 1 < len(chain) else 0
            fl |= VIRTQ_NEXT if j + 1 < len(chain) else 0
            descs.append((GPA + off, ln, fl, nxt))
    for i, (a, ln, fl, nx) in enumerate(descs[:num]):
        struct.pack_into("<QIHH", mem, 16 * i, a, ln, fl, nx)
    avail = 16 * num
    struct.pack_into("<HH", mem, avail, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", mem, avail + 4 + 2 * i, h)
    mem[4096:4096 + len(extra)] = extra
    sel = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}[num]
    return bytes([sel, (1 if event_idx else 0) | (2 if ro else 0), 0, 0]) + bytes(mem)


def hdr(typ, sector):
    return struct.pack("<IIQ", typ, 0, sector)


def put(mem_extra, off, data):
    mem_extra[off - 4096:off - 4096 + len(data)] = data


def request(typ, sector, data_len, write_data=False, payload=b""):
    extra = bytearray(2048)
    put(extra, 4096, hdr(typ, sector))
    if payload:
        put(extra, 4200, payload)
    chain = [(4096, 16, 0)]
    if payload:
        chain.append((4200, len(payload), 0))
    if data_len:
        chain.append((4608, data_len, 0 if write_data else VIRTQ_WRITE))
    chain.append((5800, 1, VIRTQ_WRITE))
    return chain, bytes(extra)


def write_dir(name, seeds):
    d = os.path.join(here, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    for fname, data in seeds.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


vring = {}
for fname, (typ, sector, dlen, wr, pl) in {
    "in": (0, 8, 1024, False, b""),
    "out": (1, 16, 1024, True, b""),
    "flush": (4, 0, 0, False, b""),
    "get_id": (8, 0, 20, False, b""),
    "discard": (11, 0, 0, False, struct.pack("<QII", 8, 16, 0)),
    "write_zeroes": (13, 0, 0, False, struct.pack("<QII", 8, 16, 1)),
    "unsupported": (77, 0, 0, False, b""),
    "beyond_end": (0, 200, 1024, False, b""),
}.items():
    chain, extra = request(typ, sector, dlen, wr, pl)
    vring[fname] = ring_image(4, [chain], event_idx=fname == "in", extra=extra)
chain, extra = request(1, 0, 512, True)
vring["out_read_only"] = ring_image(4, [chain], ro=True, extra=extra)
# An indirect request: the table at 6000 describes header, data, status.
extra = bytearray(4096)
put(extra, 4096, hdr(0, 0))
table = struct.pack("<QIHH", GPA + 4096, 16, VIRTQ_NEXT, 1) + \
    struct.pack("<QIHH", GPA + 4608, 512, VIRTQ_NEXT | VIRTQ_WRITE, 2) + \
    struct.pack("<QIHH", GPA + 5800, 1, VIRTQ_WRITE, 0)
put(extra, 6000, table)
vring["indirect"] = ring_image(4, [[(6000, len(table), VIRTQ_INDIRECT)]],
                               extra=bytes(extra))
# A loop: descriptor 0 -> 1 -> 0.
img = bytearray(ring_image(4, [[(4096, 16, 0), (4200, 1, VIRTQ_WRITE)]]))
struct.pack_into("<H", img, 4 + 16 + 14, 0)
struct.pack_into("<H", img, 4 + 16 + 12, VIRTQ_NEXT | VIRTQ_WRITE)
vring["loop"] = bytes(img)
two = [request(0, 0, 512)[0], request(4, 0, 0)[0]]
vring["two_requests"] = ring_image(8, two, extra=request(0, 0, 512)[1])

write_dir("vhost_msg", {"session": session, "bad": bad})
write_dir("vring", vring)

#!/usr/bin/env python3
# A hostile vhost-user front-end for tests: sets up one virtqueue over
# guest memory that is an unsealed file in /dev/shm, checks that a 4 KiB
# read of sector 0 completes, then shrinks the file under the back-end's
# mapping and kicks:
#   rings  the file is truncated to nothing: the back-end faults reading
#          the ring;
#   data   only the data pages go (the rings and the request header stay):
#          the back-end faults copying the data of a read.
#   data-or-ioerr  the same, but the read may also fail with IOERR (when
#          the kernel, not our code, copied into the lost pages: EFAULT).
# The back-end must survive and close the connection (it resets the
# device).  Prints "closed after shrinking <what>" (or, with data-or-ioerr,
# "request failed (IOERR) after shrinking data") and exits 0, or prints
# what went wrong and exits 1.
#   vhost_shrink.py rings|data|data-or-ioerr SOCKET
import mmap, os, select, socket, struct, sys, tempfile

GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE = 8, 9, 10
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_ENABLE = 15, 16, 18
VERSION, REPLY = 0x1, 0x4
F_PROTOCOL_FEATURES, F_VERSION_1 = 30, 32
DESC_F_NEXT, DESC_F_WRITE = 1, 2
T_IN = 0

PAGE = mmap.PAGESIZE
MEM = 4 * PAGE                  # rings | header, status | data
GPA = UVA = 0x100000
NUM = 8
DESC, AVAIL, USED = 0, 0x200, 0x400
HDR, STATUS, DATA = PAGE, PAGE + 0x100, 2 * PAGE


def send(s, req, payload=b"", fds=()):
    msg = struct.pack("<III", req, VERSION, len(payload)) + payload
    if fds:
        socket.send_fds(s, [msg], list(fds))
    else:
        s.sendall(msg)


def call(s, req, payload=b""):
    send(s, req, payload)
    hdr = s.recv(12, socket.MSG_WAITALL)
    if len(hdr) != 12:
        raise RuntimeError("request %d: connection closed" % req)
    rreq, flags, size = struct.unpack("<III", hdr)
    if rreq != req or not flags & REPLY:
        raise RuntimeError("request %d: bad reply" % req)
    return s.recv(size, socket.MSG_WAITALL)


class Ring:
    def __init__(self, m):
        self.m, self.avail_idx, self.used_seen = m, 0, 0

    def desc(self, i, off, length, flags, nxt):
        struct.pack_into("<QIHH", self.m, DESC + 16 * i, GPA + off, length, flags, nxt)

    def add_read(self):
        """Queues an IN of DATA's 4 KiB from sector 0."""
        struct.pack_into("<IIQ", self.m, HDR, T_IN, 0, 0)
        self.m[STATUS] = 0xff
        self.desc(0, HDR, 16, DESC_F_NEXT, 1)
        self.desc(1, DATA, PAGE, DESC_F_WRITE | DESC_F_NEXT, 2)
        self.desc(2, STATUS, 1, DESC_F_WRITE, 0)
        struct.pack_into("<H", self.m, AVAIL + 4 + 2 * (self.avail_idx % NUM), 0)
        self.avail_idx += 1
        struct.pack_into("<H", self.m, AVAIL + 2, self.avail_idx & 0xffff)

    def used_idx(self):
        return struct.unpack_from("<H", self.m, USED + 2)[0]


def main():
    what, path = sys.argv[1], sys.argv[2]
    either = what == "data-or-ioerr"
    if either:
        what = "data"
    if what not in ("rings", "data"):
        raise RuntimeError("rings, data or data-or-ioerr, not %r" % what)
    fd, name = tempfile.mkstemp(dir="/dev/shm", prefix="tsr-shrink-")
    os.unlink(name)
    os.ftruncate(fd, MEM)
    m = mmap.mmap(fd, MEM, mmap.MAP_SHARED)
    ring = Ring(m)
    kick, callfd = os.eventfd(0), os.eventfd(0, os.EFD_NONBLOCK)

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    features = struct.unpack("<Q", call(s, GET_FEATURES))[0]
    call(s, GET_PROTOCOL_FEATURES)
    send(s, SET_FEATURES, struct.pack("<Q", features & ((1 << F_VERSION_1) |
                                                        (1 << F_PROTOCOL_FEATURES))))
    send(s, SET_PROTOCOL_FEATURES, struct.pack("<Q", 0))
    send(s, SET_OWNER)
    send(s, SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", GPA, MEM, UVA, 0),
         [fd])
    send(s, SET_VRING_NUM, struct.pack("<II", 0, NUM))
    send(s, SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UVA + DESC, UVA + USED,
                                        UVA + AVAIL, 0))
    send(s, SET_VRING_BASE, struct.pack("<II", 0, 0))
    send(s, SET_VRING_CALL, struct.pack("<Q", 0), [callfd])
    send(s, SET_VRING_KICK, struct.pack("<Q", 0), [kick])
    send(s, SET_VRING_ENABLE, struct.pack("<II", 0, 1))

    # A well-formed read first: the front-end works.
    ring.add_read()
    os.eventfd_write(kick, 1)
    for _ in range(100):
        if ring.used_idx() == 1:
            break
        select.select([callfd], [], [], 0.1)
    if ring.used_idx() != 1 or m[STATUS] != 0:
        raise RuntimeError("the first read did not complete (used %d, status %d)"
                           % (ring.used_idx(), m[STATUS]))

    if what == "data":
        ring.add_read()          # queued, not kicked yet
        m.close()                # nothing of ours touches the lost pages
        os.ftruncate(fd, DATA)
    else:
        m.close()
        os.ftruncate(fd, 0)
    os.eventfd_write(kick, 1)
    # The back-end must close the connection (the device is reset), and
    # not die: the caller checks that it lives.  Where the copy into the
    # lost pages was the kernel's (a pread or io_uring of the store), the
    # kernel says EFAULT instead of raising SIGBUS: the request fails with
    # IOERR and the device goes on; "data-or-ioerr" accepts that too.
    rest = mmap.mmap(fd, DATA, mmap.MAP_SHARED) if what == "data" else None
    data = None
    for _ in range(100):
        try:
            r, _, _ = select.select([s], [], [], 0.1)
            data = s.recv(64) if r else None
        except ConnectionResetError:
            data = b""
        if data is not None:
            break
        if rest and struct.unpack_from("<H", rest, USED + 2)[0] == 2:
            if rest[STATUS] == 1 and either:
                print("request failed (IOERR) after shrinking data")
                return
            raise RuntimeError("the request completed with status %d after shrinking data"
                               % rest[STATUS])
    if data is None:
        raise RuntimeError("the connection is still open 10 s after shrinking %s" % what)
    if data:
        raise RuntimeError("unexpected bytes from the back-end: %r" % data)
    print("closed after shrinking %s" % what)


try:
    main()
except (OSError, RuntimeError, struct.error) as e:
    print("vhost_shrink: %s" % e)
    sys.exit(1)

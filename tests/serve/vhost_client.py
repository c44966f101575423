#!/usr/bin/env python3
# A minimal vhost-user front-end for tests: connects to a vhost-user-blk
# socket, negotiates the protocol features (GET_FEATURES,
# GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES with CONFIG) and reads the
# device config (GET_CONFIG).  Prints "capacity=<sectors> num_queues=<n>
# ro=<0|1>" and exits 0, or prints the error and exits 1.
#   vhost_client.py SOCKET
import socket, struct, sys

GET_FEATURES, GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES = 1, 15, 16
GET_CONFIG = 24
VERSION, REPLY = 0x1, 0x4
F_PROTOCOL_FEATURES = 30
PF_CONFIG = 9
VIRTIO_BLK_F_RO = 5


def call(s, req, payload=b"", reply=True):
    s.sendall(struct.pack("<III", req, VERSION, len(payload)) + payload)
    if not reply:
        return b""
    hdr = s.recv(12, socket.MSG_WAITALL)
    if len(hdr) != 12:
        raise RuntimeError("request %d: connection closed" % req)
    rreq, flags, size = struct.unpack("<III", hdr)
    if rreq != req or not flags & REPLY:
        raise RuntimeError("request %d: bad reply header %d %#x" % (req, rreq, flags))
    body = s.recv(size, socket.MSG_WAITALL) if size else b""
    if len(body) != size:
        raise RuntimeError("request %d: short reply" % req)
    return body


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sys.argv[1])
    features = struct.unpack("<Q", call(s, GET_FEATURES))[0]
    if not features & (1 << F_PROTOCOL_FEATURES):
        raise RuntimeError("no VHOST_USER_F_PROTOCOL_FEATURES")
    pf = struct.unpack("<Q", call(s, GET_PROTOCOL_FEATURES))[0]
    if not pf & (1 << PF_CONFIG):
        raise RuntimeError("no VHOST_USER_PROTOCOL_F_CONFIG")
    call(s, SET_PROTOCOL_FEATURES, struct.pack("<Q", 1 << PF_CONFIG), reply=False)
    # struct vhost_user_config: offset, size, flags, then the config bytes.
    cfg_len = 60
    body = call(s, GET_CONFIG, struct.pack("<III", 0, cfg_len, 0) + bytes(cfg_len))
    if len(body) != 12 + cfg_len:
        raise RuntimeError("GET_CONFIG: %d bytes" % len(body))
    cfg = body[12:]
    capacity = struct.unpack_from("<Q", cfg, 0)[0]
    num_queues = struct.unpack_from("<H", cfg, 34)[0]
    print("capacity=%d num_queues=%d ro=%d" %
          (capacity, num_queues, 1 if features & (1 << VIRTIO_BLK_F_RO) else 0))


try:
    main()
except (OSError, RuntimeError, struct.error) as e:
    print("vhost_client: %s" % e)
    sys.exit(1)

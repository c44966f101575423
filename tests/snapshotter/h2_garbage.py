#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Malformed HTTP/2, gRPC and protobuf input on the snapshotter's socket.

Usage: h2_garbage.py SOCKET

Each case opens its own connection, sends something wrong and checks what
comes back: an error status in the trailers (grpc-status), a stream reset,
a GOAWAY or a closed connection -- never a hang (every read has a
timeout).  A well-formed Stat of a missing key is sent last, on a fresh
connection, and must get NotFound (5): the server still serves.  Prints one
line per case; exit status 0 when all pass.

Requests' HPACK is written by hand: literal header fields without
indexing, no Huffman coding (RFC 7541 6.2.2), which every decoder must
accept.  Responses are decoded with python3-hpack (Debian).
"""
import socket
import struct
import sys

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
SERVICE = "/containerd.services.snapshots.v1.Snapshots/"


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_encode(headers):
    out = b""
    for name, value in headers:
        n, v = name.encode(), value.encode() if isinstance(value, str) else value
        out += b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v
    return out


def request_headers(method, extra=()):
    return hpack_encode([(":method", "POST"), (":scheme", "http"), (":path", SERVICE + method),
                  (":authority", "localhost"), ("content-type", "application/grpc"),
                  ("te", "trailers")] + list(extra))


def grpc_frame(msg, flag=0, length=None):
    return bytes([flag]) + struct.pack(">I", len(msg) if length is None else length) + msg


def varint(v):
    out = b""
    while v >= 128:
        out += bytes([(v & 127) | 128])
        v >>= 7
    return out + bytes([v])


def pb_string(field, s):
    b = s.encode() if isinstance(s, str) else s
    return varint(field << 3 | 2) + varint(len(b)) + b


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect(path)
        self.buf = b""
        self.hpack = hpack.Decoder()

    def send(self, data):
        self.s.sendall(data)

    def start(self):
        self.send(PREFACE + frame(SETTINGS, 0, 0, b""))

    def frames(self):
        """Yields (type, flags, stream, payload) until the peer closes."""
        while True:
            while len(self.buf) < 9:
                try:
                    chunk = self.s.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    return
                if not chunk:
                    return
                self.buf += chunk
            length = int.from_bytes(self.buf[:3], "big")
            while len(self.buf) < 9 + length:
                chunk = self.s.recv(65536)
                if not chunk:
                    return
                self.buf += chunk
            hdr, self.buf = self.buf[:9 + length], self.buf[9 + length:]
            ftype, flags = hdr[3], hdr[4]
            stream = int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0, b""))
            yield ftype, flags, stream, hdr[9:]

    def outcome(self, stream):
        """What happened to stream: 'grpc-status N', 'rst', 'goaway', 'closed'."""
        try:
            for ftype, flags, sid, payload in self.frames():
                if ftype == GOAWAY:
                    return "goaway"
                if sid != stream:
                    if ftype == HEADERS:  # keep the HPACK table in step
                        self.hpack.decode(payload, raw=False)
                    continue
                if ftype == RST_STREAM:
                    return "rst"
                if ftype == HEADERS:
                    headers = dict(self.hpack.decode(payload, raw=False))
                    if "grpc-status" in headers:
                        return "grpc-status " + headers["grpc-status"]
                    if flags & END_STREAM:
                        return "headers-only"
        except socket.timeout:
            return "timeout"
        return "closed"


def case(path, name, setup, stream, ok):
    c = Conn(path)
    try:
        setup(c)
        got = c.outcome(stream)
    except (BrokenPipeError, ConnectionResetError):
        got = "closed"
    finally:
        c.s.close()
    passed = got in ok
    print(("PASS" if passed else "FAIL") + ": " + name + ": " + got)
    return passed


def main():
    path = sys.argv[1]
    stat_missing = pb_string(2, "no-such-key")
    big_prepare = grpc_frame(pb_string(2, "k" * (20 << 10)))  # < the 64 KiB default window
    cases = [
        ("not HTTP/2 at all", lambda c: c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4),
         1, {"closed", "goaway"}),
        ("a frame of 16 MiB - 1 declared, 10 bytes sent",
         lambda c: (c.start(), c.send(b"\xff\xff\xff\x00\x00\x00\x00\x00\x01" + b"x" * 10),
                    c.s.shutdown(socket.SHUT_WR)), 1, {"closed", "goaway"}),
        ("DATA on stream 0", lambda c: (c.start(), c.send(frame(DATA, 0, 0, b"abc"))),
         1, {"closed", "goaway"}),
        ("HEADERS with a broken HPACK block",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff\xff\x0f"))),
         1, {"closed", "goaway", "rst"}),
        ("gRPC frame shorter than its 5-byte prefix",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 1, b"\x00\x00"))), 1, {"grpc-status 3"}),
        ("gRPC length larger than the body",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(stat_missing, length=999)))),
         1, {"grpc-status 3"}),
        ("gRPC length of 4 GiB - 1",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(b"", length=0xFFFFFFFF)))),
         1, {"grpc-status 8"}),
        ("compressed gRPC message",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(stat_missing, flag=1)))),
         1, {"grpc-status 12"}),
        ("protobuf that is not a message",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(b"\x12\xff\xff\xff\xff\x0f"
                                                                 b"abc")))),
         1, {"grpc-status 3"}),
        ("unknown method",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Explode"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(b"")))), 1, {"grpc-status 12"}),
        ("not gRPC content-type",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack_encode(
             [(":method", "POST"), (":scheme", "http"), (":path", SERVICE + "Stat"),
              (":authority", "x"), ("content-type", "text/plain")])))), 1, {"headers-only"}),
        ("200 header fields",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers(
             "Stat", [("x-h%d" % i, "v") for i in range(200)])))), 1, {"rst", "closed", "goaway"}),
        ("a prepare with a key of 20 KiB",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Prepare"))),
                    [c.send(frame(DATA, 0, 1, p)) for p in
                     [big_prepare[i:i + 16384] for i in range(0, len(big_prepare), 16384)]],
                    c.send(frame(DATA, END_STREAM, 1, b""))), 1, {"grpc-status 3"}),
        ("a List filter that does not parse",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("List"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(pb_string(2, 'name==,,"'))))),
         1, {"grpc-status 3"}),
        ("a stream reset while its request runs",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Cleanup"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(b""))),
                    c.send(frame(RST_STREAM, 0, 1, b"\x00\x00\x00\x08")),
                    c.send(frame(HEADERS, END_HEADERS, 3, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 3, grpc_frame(stat_missing)))),
         3, {"grpc-status 5"}),
        ("well-formed Stat of a missing key, after all that",
         lambda c: (c.start(), c.send(frame(HEADERS, END_HEADERS, 1, request_headers("Stat"))),
                    c.send(frame(DATA, END_STREAM, 1, grpc_frame(stat_missing)))),
         1, {"grpc-status 5"}),
    ]
    ok = True
    for name, setup, stream, expect in cases:
        ok &= case(path, name, setup, stream, expect)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

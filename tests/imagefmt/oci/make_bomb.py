#!/usr/bin/env python3
"""Writes an OCI image layout tar whose layers are tars of one file of zeros.

    make_bomb.py OUT SIZE[,SIZE...] [--gzip-layers] [--gzip-archive]

Each SIZE (bytes) makes one layer holding the file "zeros" of that size,
streamed (never held in memory).  --gzip-layers compresses each layer blob
(a few MB for GiBs: a decompression bomb); --gzip-archive compresses the
whole archive instead, so the layer blobs inside it are as large as their
tars.  Used by import_limits.sh."""
import hashlib
import io
import json
import sys
import tarfile
import time
import zlib

CHUNK = 1 << 20


def layer_tar(size):
    """The bytes of a tar holding "zeros" (size bytes), in chunks."""
    ti = tarfile.TarInfo("zeros")
    ti.size = size
    ti.mtime = 1700000000
    ti.mode = 0o644
    yield ti.tobuf(format=tarfile.GNU_FORMAT)
    zero = bytes(CHUNK)
    left = size
    while left:
        n = min(left, CHUNK)
        yield zero[:n]
        left -= n
    yield bytes((512 - size % 512) % 512) + bytes(1024)


def gzipped(chunks):
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    for c in chunks:
        out = z.compress(c)
        if out:
            yield out
    yield z.flush()


def digest_of(chunks):
    h, n = hashlib.sha256(), 0
    for c in chunks:
        h.update(c)
        n += len(c)
    return "sha256:" + h.hexdigest(), n


class Stream(io.RawIOBase):
    """A file-like view of a chunk generator, for tarfile.addfile."""

    def __init__(self, chunks):
        self.chunks, self.buf = chunks, b""

    def readable(self):
        return True

    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.chunks)
            except StopIteration:
                break
        if n < 0:
            n = len(self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def add(tf, name, size, chunks):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = int(time.time())
    tf.addfile(ti, Stream(chunks))


def add_bytes(tf, name, data):
    add(tf, name, len(data), iter([data]))


def main():
    out, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    gzip_layers = "--gzip-layers" in sys.argv
    gzip_archive = "--gzip-archive" in sys.argv
    layers = []
    for size in sizes:
        diff_id, tar_len = digest_of(layer_tar(size))
        if gzip_layers:  # small: kept in memory rather than made again
            blob = b"".join(gzipped(layer_tar(size)))
            digest, n = digest_of([blob])
            layers.append((lambda b=blob: iter([b]), diff_id, digest, n))
        else:
            layers.append((lambda s=size: layer_tar(s), diff_id, diff_id, tar_len))
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [l[1] for l in layers]},
    }).encode()
    mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                   "size": len(config)},
        "layers": [{"mediaType": mt, "digest": l[2], "size": l[3]} for l in layers],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                       "size": len(manifest)}],
    }).encode()
    with tarfile.open(out, "w:gz" if gzip_archive else "w",
                      **({"compresslevel": 1} if gzip_archive else {})) as tf:
        add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tf, "index.json", index)
        for data in (manifest, config):
            add_bytes(tf, "blobs/sha256/" + hashlib.sha256(data).hexdigest(), data)
        for chunks, _, digest, n in layers:
            add(tf, "blobs/sha256/" + digest[7:], n, chunks())


if __name__ == "__main__":
    main()

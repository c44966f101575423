#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the OCI fuzz targets (tests/fuzz/corpus/).

    make_seeds.py CORPUS_DIR

oci_image/: small image archives, hand-made with tarfile so they stay a few
KiB: OCI layouts (plain and gzip layers, a nested index, two platforms, a
ref name) and `docker save` archives.  oci_apply/: small layer tars with
files, dirs, hard links, symlinks, a fifo, a device, xattrs, whiteouts
(plain and opaque), replacements, and escape attempts (.., absolute paths,
through the `esc` symlink the harness puts in the root, hard links out).
The output is deterministic (fixed mtimes, gzip without a timestamp), so
regenerating rewrites the committed seeds byte for byte.  The layer blob
seeds come from the fuzzer itself (fuzz.sh, TSR_FUZZ_WRITE_SEEDS).
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

# Pad tars to 1 KiB, not 10 KiB: small seeds fuzz faster.
tarfile.RECORDSIZE = 1024
MTIME = 1000000000


def ti(name, type=tarfile.REGTYPE, data=None, linkname="", mode=0o644,
       uid=0, gid=0, pax=None, devmajor=0, devminor=0):
    i = tarfile.TarInfo(name)
    i.type = type
    i.linkname = linkname
    i.mode = mode
    i.uid, i.gid = uid, gid
    i.mtime = MTIME
    i.size = len(data) if data is not None else 0
    i.devmajor, i.devminor = devmajor, devminor
    if pax:
        i.pax_headers = pax
    return i, data


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for i, data in members:
            t.addfile(i, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gz(b):
    return gzip.compress(b, mtime=0)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def jdump(o):
    return json.dumps(o, separators=(",", ":"), sort_keys=True).encode()


def write(path, b):
    with open(path, "wb") as f:
        f.write(b)


D = tarfile.DIRTYPE
SYM = tarfile.SYMTYPE
LNK = tarfile.LNKTYPE

# ---- layer tars -------------------------------------------------------------
basic = tar_bytes([
    ti("etc", D, mode=0o755),
    ti("etc/hostname", data=b"tessera\n"),
    ti("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", uid=0, gid=0),
    ti("bin", D, mode=0o755),
    ti("bin/busybox", data=b"\x7fELF" + bytes(60), mode=0o4755),
    ti("bin/sh", SYM, linkname="busybox"),
    ti("bin/ls", SYM, linkname="/bin/busybox"),
    ti("bin/cat", LNK, linkname="bin/busybox"),
    ti("dev", D, mode=0o755),
    ti("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
    ti("dev/fifo", tarfile.FIFOTYPE, mode=0o600),
    ti("tmp", D, mode=0o1777),
    ti("data", D, mode=0o755, uid=1000, gid=1000),
    ti("data/x", data=b"xattrs\n", pax={
        "SCHILY.xattr.user.note": "hello",
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16,
        "SCHILY.xattr.trusted.skip": "t"}),
])
whiteouts = tar_bytes([
    ti("etc", D, mode=0o755),
    ti("etc/.wh.hostname", data=b""),
    ti("data", D, mode=0o700),
    ti("data/.wh..wh..opq", data=b""),
    ti("data/new", data=b"after the opaque whiteout\n"),
    ti(".wh.missing", data=b""),
    ti("keep/.wh..wh.plnk", data=b""),
])
replace = tar_bytes([
    ti("etc", data=b"a file over a dir\n"),
    ti("data/file", D, mode=0o755),
    ti("data/file/inner", data=b"z"),
    ti("lnk", D),
    ti("data/hl", LNK, linkname="data/file/inner"),
], fmt=tarfile.GNU_FORMAT)
# One escape attempt per tar: the first refused entry ends a layer.
escapes = {
    "esc-dotdot": [ti("../outside", data=b"dotdot\n")],
    "esc-abs": [ti("/abs", data=b"absolute\n")],
    "esc-symlink": [ti("esc/pwned", data=b"through a symlink\n")],
    "esc-abssymlink": [ti("esc2/pwned", data=b"through an absolute symlink\n")],
    "esc-newsymlink": [ti("out", SYM, linkname="../sentinel"),
                       ti("out/pwned", data=b"through a new symlink\n")],
    "esc-whiteout": [ti("esc/.wh.keep", data=b"")],
    "esc-hardlink": [ti("hl", LNK, linkname="../sentinel/keep")],
    "esc-hardlinksym": [ti("hl", LNK, linkname="esc/keep")],
    "esc-whdotdot": [ti("d", D), ti("d/.wh..", data=b"")],
    "esc-deep": [ti("a/" * 40 + "f", data=b"deep\n")],
}
ustar = tar_bytes([
    ti("usr", D), ti("usr/bin", D),
    ti("usr/bin/tool", data=b"#!/bin/sh\necho hi\n", mode=0o755),
    ti("usr/bin/tool2", LNK, linkname="usr/bin/tool"),
], fmt=tarfile.USTAR_FORMAT)

# ---- image archives ---------------------------------------------------------
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZ = MT_LAYER + "+gzip"


def config(diff_ids, arch="amd64"):
    return jdump({"architecture": arch, "os": "linux",
                  "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}})


def desc(mt, b, **kw):
    d = {"mediaType": mt, "digest": sha(b), "size": len(b)}
    d.update(kw)
    return d


def oci_archive(layers, nested=False, arches=("amd64",), ref="v1"):
    """layers: list of (tar bytes, gzip?).  Returns the outer tar."""
    blobs = {}
    mdescs = []
    for arch in arches:
        ldescs, diff_ids = [], []
        for raw, compress in layers:
            b = gz(raw) if compress else raw
            blobs[sha(b)] = b
            ldescs.append(desc(MT_LAYER_GZ if compress else MT_LAYER, b))
            diff_ids.append(sha(raw))
        cfg = config(diff_ids, arch)
        blobs[sha(cfg)] = cfg
        man = jdump({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                     "config": desc(MT_CONFIG, cfg), "layers": ldescs})
        blobs[sha(man)] = man
        md = desc(MT_MANIFEST, man,
                  platform={"os": "linux", "architecture": arch})
        if ref:
            md["annotations"] = {"org.opencontainers.image.ref.name": ref}
        mdescs.append(md)
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": mdescs}
    if nested:
        inner = jdump(index)
        blobs[sha(inner)] = inner
        index = {"schemaVersion": 2, "mediaType": MT_INDEX,
                 "manifests": [desc(MT_INDEX, inner)]}
    members = [ti("oci-layout", data=jdump({"imageLayoutVersion": "1.0.0"})),
               ti("index.json", data=jdump(index)),
               ti("blobs", D), ti("blobs/sha256", D)]
    for d, b in sorted(blobs.items()):
        members.append(ti("blobs/sha256/" + d[7:], data=b))
    return tar_bytes(members)


def docker_archive(layers, tags=("tessera/fuzz:1",)):
    diff_ids, names, members = [], [], []
    for n, raw in enumerate(layers):
        names.append("l%d/layer.tar" % n)
        members += [ti("l%d" % n, D), ti(names[-1], data=raw)]
        diff_ids.append(sha(raw))
    cfg = config(diff_ids)
    cname = hashlib.sha256(cfg).hexdigest() + ".json"
    members.append(ti(cname, data=cfg))
    mf = [{"Config": cname, "RepoTags": list(tags), "Layers": names}]
    members.insert(0, ti("manifest.json", data=jdump(mf)))
    return tar_bytes(members)


def main():
    out = sys.argv[1]
    ap = os.path.join(out, "oci_apply")
    im = os.path.join(out, "oci_image")
    os.makedirs(ap, exist_ok=True)
    os.makedirs(im, exist_ok=True)
    for name, b in [("basic.tar", basic), ("whiteouts.tar", whiteouts),
                    ("replace.tar", replace),
                    ("ustar.tar", ustar), ("basic.tar.gz", gz(basic))]:
        write(os.path.join(ap, name), b)
    for name, members in escapes.items():
        write(os.path.join(ap, name + ".tar"), tar_bytes(members))
    write(os.path.join(im, "oci-plain.tar"),
          oci_archive([(ustar, False), (whiteouts, False)]))
    write(os.path.join(im, "oci-gzip.tar"), oci_archive([(basic, True)]))
    write(os.path.join(im, "oci-nested.tar"),
          oci_archive([(ustar, False)], nested=True, ref=None))
    write(os.path.join(im, "oci-2arch.tar"),
          oci_archive([(ustar, True)], arches=("amd64", "arm64")))
    write(os.path.join(im, "docker.tar"), docker_archive([ustar, whiteouts]))
    write(os.path.join(im, "docker.tar.gz"), gz(docker_archive([ustar])))


if __name__ == "__main__":
    main()

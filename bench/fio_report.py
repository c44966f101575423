#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Results of bench/fio_suite.sh: JSON, CSV, Markdown and gnuplot PNGs.

    fio_report.py OUT [--suite DIR] [--library FILE] [--machine FILE]
                  [--command CMD] [--no-plots]

Reads DIR (default OUT/fio-suite: fio.jsonl, fw.jsonl, systems.json,
skipped.txt, profile/*.txt, commands.txt), the library benchmarks' JSON lines
(--library) and the machine line (--machine).  Writes OUT/results.json,
OUT/results.csv, OUT/fio-summary.md, OUT/plot-data/*.dat and OUT/*.png
(bench/plot/*.gp), and prints the checks (every system produced numbers,
every writable system passed verify except rows known broken upstream) as
JSON on stdout.
"""
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- what the systems are ---------------------------------------------------------
DESC = {
    "tsr-fuse": "tessera mount: MNT/volumes/v, child volume of a committed layer of the data",
    "tsr-engine": "fio engine libtessera-fio.so on a child volume (no FUSE, no kernel)",
    "tsr-loop": "ext4 on a direct-io loop device on a tessera volume file (a file of half the size)",
    "tsr-vhost": "tessera vhost, fio in a QEMU guest (TCG) on /dev/vda",
    "overlay": "the data file in overlayfs, lower holds it (copy-up on the first write open)",
    "ptll": "libfuse 3.14 passthrough_ll over a raw copy (the FUSE limit)",
    "qsd-fuse-raw": "qemu-storage-daemon FUSE export of a raw copy",
    "qsd-fuse-qcow2": "qemu-storage-daemon FUSE export of a qcow2 overlay over the raw data",
    "qsd-vhost-raw": "qemu-storage-daemon vhost-user-blk export of a raw copy, fio in the guest",
    "qsd-vhost-qcow2": "qemu-storage-daemon vhost-user-blk export of a qcow2 overlay, fio in the guest",
    "native": "the raw file on the host filesystem (the machine's limit)",
    "native-loop": "ext4 on a direct-io loop device on a native file (the limit for tsr-loop)",
}
SPACE = {
    "tsr-fuse": "store dir du", "tsr-engine": "store dir du", "tsr-loop": "store dir du",
    "tsr-vhost": "store dir du", "overlay": "upper dir du", "ptll": "file du",
    "qsd-fuse-raw": "file du", "qsd-fuse-qcow2": "qcow2 file du", "qsd-vhost-raw": "file du",
    "qsd-vhost-qcow2": "qcow2 file du", "native": "file du", "native-loop": "image du",
}
# group: (title, tessera system, comparison systems)
FILE_CMP = ["overlay", "ptll", "qsd-fuse-raw", "qsd-fuse-qcow2", "native"]
GROUPS = [
    ("file", "a file on the host (FUSE, overlayfs, native; fio io_uring direct=1)", "tsr-fuse", FILE_CMP),
    ("engine", "the store without a front-end (fio engine) against the same files", "tsr-engine", FILE_CMP),
    ("loop", "ext4 on a direct-io loop device", "tsr-loop", ["native-loop"]),
    ("guest", "vhost-user-blk, fio inside a QEMU guest (TCG: CPU-bound, compare side by side only)",
     "tsr-vhost", ["qsd-vhost-raw", "qsd-vhost-qcow2"]),
]
TESSERA = [g[2] for g in GROUPS]
WRITABLE = list(DESC)  # every system is written to and verified

# ---- marks: rows known wrong or adapted (shown in every table) ----------------------
MARKS = {
    "K1": "known broken upstream: QEMU 7.2's FUSE export corrupts concurrent writes "
          "(writes at iodepth > 1 and their verify); run, shown, never the best comparison",
    "K2": "adapted: passthrough_ll's direct writes fail with EINVAL upstream (it opens the "
          "backing file O_DIRECT and splices unaligned data): its writes are buffered (page cache); "
          "never the best comparison",
    "V": "this system FAILED its verify pass (data wrong): every row of it is suspect",
    "F": "fio failed or produced no I/O for this row",
}
KNOWN_BROKEN = {"K1"}


def jobs_table():
    out = []
    for line in open(os.path.join(HERE, "fio", "jobs.tsv")):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        out.append({"name": f[0], "rw": f[1], "bs": f[2], "qd": int(f[3]),
                    "mix": f[4], "metric": f[5]})
    return out


def writes(job):
    return "write" in job["rw"] or job["rw"] == "randrw"


def static_marks(system, job):
    m = []
    if system.startswith("qsd-fuse") and (job is None or (writes(job) and job["qd"] > 1)):
        m.append("K1")
    if system == "ptll" and (job is None or writes(job)):
        m.append("K2")
    return m


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return "%d" % round(x)
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def rfmt(r):
    return "–" if r is None else "%.2fx" % r


def human(b):
    if b is None:
        return "–"
    for u, s in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= u:
            return "%.1f %s" % (b / u, s)
    return "%d B" % b


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


# ---- profile -> one-line reason ----------------------------------------------------
CATS = [
    ("zstd decompression", r"zstd|ZSTD|HUF_|FSE_"),
    ("SHA-256 digests", r"sha256|SHA256|sha_"),
    ("LMDB metadata", r"mdb_|lmdb"),
    ("syncs to disk (fsync, journal)", r"fsync|fdatasync|jbd2|ext4_sync|blkdev_issue_flush|file_write_and_wait"),
    ("writes into the host filesystem (ext4, page cache)",
     r"^ext4_|generic_perform_write|filemap_|iomap_|__block_commit_write|mark_buffer_dirty|dquot|iversion|file_update_time|folio_mark_dirty"),
    ("data copies", r"memcpy|memmove|copy_user|copy_to_iter|copy_from_iter|copy_folio|copy_page|copy_from_user|copy_to_user|chunk_cache_copy|rep_movs"),
    ("FUSE request transport", r"^fuse_|fuse_dev|fuse_session|fuse_ll|fuse_reply|fuse_buf"),
    ("lock contention", r"spin_lock_slowpath|queued_spin|mutex_lock|rwsem|osq_lock"),
    ("thread wake-ups and context switches", r"finish_task_switch|schedule|futex|spin_unlock_irq|try_to_wake_up|__wake_up|pthread_cond|ttwu"),
    ("waiting for requests (poll, eventfd)", r"poll|epoll|eventfd"),
    ("vring / virtqueue processing", r"vring|virtq|vhost|desc_"),
    ("page faults and page allocation", r"page_fault|clear_page|alloc_pages|get_page_from_freelist|handle_mm_fault|gup_|folio_alloc"),
    ("syscall entry and exit", r"do_syscall|entry_SYSCALL|syscall_exit|^read$|^write$|^pread|^pwrite|__libc_read|__libc_write|x86_indirect_thunk"),
    ("io_uring", r"io_uring|io_submit|io_issue"),
    ("block layer / loop", r"blk_|loop_|bio_|submit_bio"),
]


def profile_entries(path):
    ent, samples = [], None
    if not os.path.exists(path):
        return ent, samples
    for line in open(path):
        m = re.match(r"# Samples: (\d+)(K?)", line)
        if m:
            samples = int(m.group(1)) * (1000 if m.group(2) else 1)
            continue
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+?)\s*$", line)
        if m:
            ent.append((float(m.group(1)), m.group(2), m.group(3)))
    return ent, samples


DSO_CATS = [("SHA-256 digests", r"libcrypto"), ("zstd decompression", r"libzstd"),
            ("LMDB metadata", r"liblmdb"), ("FUSE request transport", r"libfuse")]


def category(sym, dso=""):
    for c, rx in CATS:
        if re.search(rx, sym):
            return c
    for c, rx in DSO_CATS:
        if re.search(rx, dso):
            return c
    return None


def reason(path, cpu=None, seconds=None):
    """One line: where the tessera process spent its samples during the job."""
    ent, samples = profile_entries(path)
    if not ent:
        return None
    busy = ""
    if cpu is not None and seconds:
        busy = "tessera process busy %.0f%% of one CPU; " % (100.0 * cpu / seconds)
    if samples is not None and seconds and samples < 20 * seconds:
        return ("%sonly %d perf samples in the job: the tessera process was mostly idle, the time went "
                "elsewhere (the guest under TCG, the kernel, the client); top: %s" % (
                    busy, samples, ", ".join("%s %.0f%%" % (sym[:32], p) for p, dso, sym in ent[:3])))
    cat = {}
    for p, dso, sym in ent:
        c = category(sym, dso) or ("other (%s)" % dso)
        cat[c] = cat.get(c, 0.0) + p
    top_c = category(ent[0][2], ent[0][1])
    best = max(cat, key=lambda c: cat[c])
    # The top symbol's category when it alone is the biggest share, else the biggest sum.
    if top_c and ent[0][0] >= cat[best] * 0.8:
        best = top_c
    tops = ", ".join("%s %.0f%%" % (sym[:36], p) for p, dso, sym in ent[:3])
    return "%smost samples in %s (%.0f%% of the top entries); top: %s" % (busy, best, cat[best], tops)


# ---- main -----------------------------------------------------------------------------
def main():
    args = sys.argv[1:]
    out = args[0]
    opts = {"--suite": os.path.join(out, "fio-suite"), "--library": None, "--machine": None,
            "--command": "", "--no-plots": False}
    i = 1
    while i < len(args):
        if args[i] == "--no-plots":
            opts["--no-plots"] = True
            i += 1
        else:
            opts[args[i]] = args[i + 1]
            i += 2
    suite = opts["--suite"]
    jobs = jobs_table()
    jobmap = {j["name"]: j for j in jobs}
    lines = read_jsonl(os.path.join(suite, "fio.jsonl"))
    fw = read_jsonl(os.path.join(suite, "fw.jsonl"))
    library = read_jsonl(opts["--library"]) if opts["--library"] else []
    machine = read_jsonl(opts["--machine"])[0] if opts["--machine"] and os.path.exists(opts["--machine"]) else {}
    cfg = json.load(open(os.path.join(suite, "systems.json"))) if os.path.exists(os.path.join(suite, "systems.json")) else {}
    skipped = {}
    sp = os.path.join(suite, "skipped.txt")
    if os.path.exists(sp):
        for l in open(sp):
            if "\t" in l:
                s, why = l.rstrip("\n").split("\t", 1)
                skipped[s] = why
    ran = cfg.get("host_systems", []) + cfg.get("guest_systems", [])

    runs = [d for d in lines if d.get("kind") == "job"]
    verify = {d["system"]: d for d in lines if d.get("kind") == "verify"}
    space0 = {d["system"]: d["store_bytes"] for d in lines if d.get("kind") == "space"}

    # medians per (system, job)
    res = {}
    for s in ran:
        for j in jobs:
            rs = [d for d in runs if d["system"] == s and d["job"] == j["name"]]
            ok = [d for d in rs if not d.get("failed") and d.get("rc", 0) == 0]
            r = {"system": s, "job": j["name"], "n": len(ok), "runs": len(rs)}
            for k in ("iops", "mib_s", "p50_us", "p99_us", "r_p50_us", "r_p99_us", "w_p50_us", "w_p99_us",
                      "daemon_cpu_s"):
                r[k] = med([d.get(k) for d in ok])
            r["value"] = r[j["metric"]]
            r["failed"] = next((d.get("failed") or "fio exit %s" % d.get("rc") for d in rs
                                if d.get("failed") or d.get("rc", 0) != 0), None)
            rep1 = [d for d in rs if str(d.get("rep")) == "1"]
            r["store_bytes"] = rep1[0].get("store_bytes") if rep1 else None
            r["write_bytes"] = rep1[0].get("write_bytes") if rep1 else None
            res[(s, j["name"])] = r

    vfail = {s for s, d in verify.items() if d.get("verify") != "pass"}

    def marks(s, jname):
        j = jobmap.get(jname)
        m = static_marks(s, j)
        if s in vfail and "K1" not in static_marks(s, None):
            m.append("V")
        r = res.get((s, jname))
        if r is not None and (r["value"] is None or r["failed"]):
            m.append("F")
        return m

    def cell(s, jname, v):
        m = marks(s, jname)
        return fmt(v) + ((" " + ",".join(m)) if m else "")

    def usable(s, jname):
        """May s be the best comparison for the row?"""
        return not (set(marks(s, jname)) & {"K1", "K2", "V", "F"})

    # ---- the headline rows ---------------------------------------------------------
    head = []
    for g, title, tsr, cmps in GROUPS:
        if tsr not in ran:
            continue
        present = [c for c in cmps if c in ran]
        for j in jobs:
            t = res[(tsr, j["name"])]
            best = None
            for c in present:
                v = res[(c, j["name"])]["value"]
                if v is not None and usable(c, j["name"]) and (best is None or v > best[1]):
                    best = (c, v)
            ratio = t["value"] / best[1] if best and t["value"] else None
            prof = os.path.join(suite, "profile", "%s.%s.txt" % (tsr, j["name"]))
            head.append({
                "group": g, "job": j["name"], "unit": "IOPS" if j["metric"] == "iops" else "MiB/s",
                "tessera_system": tsr, "tessera": t["value"], "tessera_marks": marks(tsr, j["name"]),
                "best_system": best[0] if best else None, "best": best[1] if best else None,
                "ratio": ratio, "behind": ratio is not None and ratio < 1.0,
                "vs": {c: (t["value"] / res[(c, j["name"])]["value"]
                           if t["value"] and res[(c, j["name"])]["value"] else None) for c in present},
                "vs_marks": {c: marks(c, j["name"]) for c in present},
                "reason": reason(prof, t["daemon_cpu_s"] if tsr != "tsr-engine" else None,
                                 cfg.get("runtime_s", 0) + cfg.get("ramp_s", 0)) if os.path.exists(prof) else None,
                "profile": os.path.relpath(prof, out) if os.path.exists(prof) else None,
            })
    head_sorted = sorted(head, key=lambda h: (not h["behind"], h["ratio"] if h["ratio"] is not None else 1e9))

    # ---- checks (the ctest) ---------------------------------------------------------
    problems = []
    for s in ran:
        for j in jobs:
            r = res[(s, j["name"])]
            if r["value"] is None or r["failed"]:
                problems.append("%s %s: no numbers (%s)" % (s, j["name"], r["failed"] or "no result line"))
    for s in ran:
        if s not in WRITABLE:
            continue
        d = verify.get(s)
        known = bool(set(static_marks(s, None)) & KNOWN_BROKEN)
        if d is None:
            problems.append("%s: no verify pass" % s)
        elif d.get("verify") != "pass" and not known:
            problems.append("%s: verify FAILED: %s" % (s, d.get("verify_msg", "")))
    for s, why in skipped.items():
        problems.append("%s: not run (%s)" % (s, why))
    checks = {"ok": not problems, "problems": problems, "systems_run": ran, "skipped": skipped,
              "verify": {s: verify[s].get("verify") for s in verify}}

    # ---- first write ------------------------------------------------------------------
    fwt = {}
    for d in fw:
        if d.get("kind") == "first-write":
            fwt.setdefault(d["file_bytes"], []).append(d["total_us"])
    fwo = {d["file_bytes"]: d for d in fw if d.get("kind") == "first-write-overlay"}
    fwlib = {}
    for d in library:
        if d.get("bench") == "first-write" and d.get("param") != "ratio" and d.get("p50_us") is not None:
            fwlib.setdefault(d["param"], []).append((d["parent_bytes"], d["p50_us"]))
    libp = {}
    for v in fwlib.values():
        libp[v[0][0]] = med([x[1] for x in v])
    fw_rows = []
    for b in sorted(set(fwt) | set(fwo)):
        t = med(fwt.get(b, []))
        o = fwo.get(b)
        fw_rows.append({"size": human(b).replace(".0 ", " "), "bytes": b, "tessera_fuse_p50_us": t,
                        "tessera_library_p50_us": libp.get(b),
                        "tessera_fuse_rounds_us": fwt.get(b, []),
                        "overlay_median_us": o["median_us"] if o else None,
                        "overlay_upper_bytes": o["upper_bytes"] if o else None,
                        "overlay_open_median_us": o["open_median_us"] if o else None,
                        "ratio_overlay_over_tessera": (o["median_us"] / t) if o and t else None})

    # ---- outputs: json, csv -------------------------------------------------------------
    doc = {"machine": machine, "config": cfg, "command": opts["--command"], "jobs": jobs,
           "systems": {s: DESC[s] for s in ran}, "skipped": skipped, "marks": MARKS,
           "results": [dict(r, marks=marks(r["system"], r["job"]), metric=jobmap[r["job"]]["metric"])
                       for r in res.values()],
           "runs": runs, "verify": list(verify.values()),
           "space_after_setup": space0, "headline": head_sorted, "first_write": fw_rows,
           "first_write_raw": fw, "library": library, "checks": checks}
    json.dump(doc, open(os.path.join(out, "results.json"), "w"), indent=1)
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "job", "metric", "value", "iops", "mib_s", "p50_us", "p99_us", "r_p50_us",
                    "r_p99_us", "w_p50_us", "w_p99_us", "daemon_cpu_s", "store_bytes", "write_bytes",
                    "verify", "marks", "runs"])
        for r in res.values():
            w.writerow([r["system"], r["job"], jobmap[r["job"]]["metric"], r["value"], r["iops"], r["mib_s"],
                        r["p50_us"], r["p99_us"], r["r_p50_us"], r["r_p99_us"], r["w_p50_us"], r["w_p99_us"],
                        r["daemon_cpu_s"], r["store_bytes"], r["write_bytes"],
                        verify.get(r["system"], {}).get("verify", ""),
                        " ".join(marks(r["system"], r["job"])), r["runs"]])
        for row in fw_rows:
            w.writerow(["first-write", row["size"], "total_us", row["tessera_fuse_p50_us"], "", "", "", "", "",
                        "", "", "", "", "", row["bytes"], "", "overlay_median_us=%s" % row["overlay_median_us"], ""])

    # ---- plots --------------------------------------------------------------------------
    plots = []
    if not opts["--no-plots"]:
        plots = make_plots(out, suite, jobs, res, ran, fw_rows, fwlib, lines)

    # ---- markdown ------------------------------------------------------------------------
    md = []
    P = md.append
    P("## fio suite: tessera against the comparison systems")
    P("")
    P("%s; %s of random data per system (ext4 systems: a file of %s); %s s per job after %s s of ramp; %d repetition(s) (medians)." % (
        "**quick mode** (small sizes, 1 s jobs: indicative only)" if cfg.get("quick") else "full mode",
        human(cfg.get("size")), human(cfg.get("ext_file_size")), fmt(cfg.get("runtime_s")),
        fmt(cfg.get("ramp_s")), cfg.get("reps", 1)))
    P("Every system starts from the same data; on tessera it is a committed layer and the volume is its child, so reads are of inherited data and the first writes copy up.")
    P("Jobs (bench/fio/jobs.tsv, in this order; fio io_uring, direct=1): " + ", ".join(j["name"] for j in jobs) +
      "; then a verify pass per system (randwrite 4 KiB iodepth 32 over %s, crc32c, verify_fatal)." % cfg.get("verify_size", "?"))
    P("")
    P("How to read: ratio = tessera / comparison (higher is better for tessera: > 1.00x = ahead). "
      "IOPS for 4 KiB jobs (read + write for the mixed job), MiB/s for 1 MiB jobs. "
      "The best comparison is the highest comparison of the row that is not marked K1, K2, V or F. "
      "Marks:")
    P("")
    for k, v in MARKS.items():
        P("- **%s**: %s" % (k, v))
    P("")
    P("### Per job: tessera / best comparison (rows where tessera is behind first)")
    P("")
    P("| group | job | unit | tessera system | tessera | best comparison | its value | tessera / best | reason (perf profile of the tessera process during the job) |")
    P("|---|---|---|---|---:|---|---:|---:|---|")
    for h in head_sorted:
        why = ""
        if h["behind"]:
            why = h["reason"] or "no profile (perf missing or --no-profile)"
        P("| %s | %s | %s | %s | %s | %s | %s | %s%s | %s |" % (
            h["group"], h["job"], h["unit"], h["tessera_system"],
            fmt(h["tessera"]) + ((" " + ",".join(h["tessera_marks"])) if h["tessera_marks"] else ""),
            h["best_system"] or "–", fmt(h["best"]), "**" + rfmt(h["ratio"]) + "**" if h["behind"] else rfmt(h["ratio"]),
            " (behind)" if h["behind"] else "", why.replace("|", "/")))
    P("")
    for g, title, tsr, cmps in GROUPS:
        if tsr not in ran:
            continue
        present = [c for c in cmps if c in ran]
        syss = [tsr] + present
        P("### %s: %s" % (g, title))
        P("")
        P("| job | unit | " + " | ".join(syss) + " | " + " | ".join("%s / %s" % (tsr, c) for c in present) + " |")
        P("|---|---|" + "---:|" * (len(syss) + len(present)))
        for j in jobs:
            P("| %s | %s | %s | %s |" % (
                j["name"], "IOPS" if j["metric"] == "iops" else "MiB/s",
                " | ".join(cell(s, j["name"], res[(s, j["name"])]["value"]) for s in syss),
                " | ".join(rfmt(next(h for h in head if h["group"] == g and h["job"] == j["name"])["vs"][c]) +
                           ((" " + ",".join(marks(c, j["name"]))) if marks(c, j["name"]) else "")
                           for c in present)))
        P("")
        P("Completion latency p50 / p99 (µs; reads for read and mixed jobs, writes for write jobs):")
        P("")
        P("| job | " + " | ".join(syss) + " |")
        P("|---|" + "---:|" * len(syss))
        for j in jobs:
            P("| %s | %s |" % (j["name"], " | ".join(
                "%s / %s%s" % (fmt(res[(s, j["name"])]["p50_us"]), fmt(res[(s, j["name"])]["p99_us"]),
                               (" " + ",".join(marks(s, j["name"]))) if marks(s, j["name"]) else "")
                for s in syss)))
        P("")
    P("### Verify pass (crc32c, verify_fatal)")
    P("")
    P("| system | result | marks | note |")
    P("|---|---|---|---|")
    for s in ran:
        d = verify.get(s)
        m = static_marks(s, {"rw": "randwrite", "qd": 32, "bs": "4k"})
        if s in vfail and not (set(m) & KNOWN_BROKEN):
            m.append("V")
        res_s = "–" if d is None else ("pass" if d.get("verify") == "pass" else "**FAILED**")
        note = "" if d is None or d.get("verify") == "pass" else re.sub(
            r"/\S*/tsr-fiosuite\.\w+/", "", d.get("verify_msg") or "")[:160].replace("|", "/")
        if d is not None and d.get("verify") != "pass" and set(m) & KNOWN_BROKEN:
            note = "expected (known broken upstream). " + note
        P("| %s | %s | %s | %s |" % (s, res_s, ",".join(m), note))
    P("")
    if fw_rows:
        P("### First write with fsync against inherited-file size")
        P("")
        P("open(O_WRONLY) + pwrite 4 KiB + fsync, timed in-process (bench/fsync_write). tessera: a chunk its child volume never wrote, through `tessera mount` (p50 of the rounds); overlayfs: the lower file through a fresh overlay mount per round (median; the copy-up of the whole file happens in the open).")
        P("")
        P("| file size | tessera (FUSE) p50 µs | tessera library (tsr_bench) p50 µs | overlayfs median µs | of which open µs | overlayfs / tessera (FUSE) | overlay upper dir |")
        P("|---|---:|---:|---:|---:|---:|---:|")
        for r in fw_rows:
            P("| %s | %s | %s | %s | %s | %s | %s |" % (r["size"], fmt(r["tessera_fuse_p50_us"]),
                                                 fmt(r["tessera_library_p50_us"]), fmt(r["overlay_median_us"]),
                                                 fmt(r["overlay_open_median_us"]), rfmt(r["ratio_overlay_over_tessera"]),
                                                 human(r["overlay_upper_bytes"])))
        P("")
    P("### Store space after each job")
    P("")
    P("What each system allocates (du -s -B1) after setup and after each job; written = bytes fio wrote in that job (the first repetition).")
    P("")
    P("| system | measures | after setup | " + " | ".join(j["name"] for j in jobs) + " | total written |")
    P("|---|---|---:|" + "---:|" * (len(jobs) + 1))
    for s in ran:
        tot = sum((res[(s, j["name"])]["write_bytes"] or 0) for j in jobs)
        P("| %s | %s | %s | %s | %s |" % (s, SPACE[s], human(space0.get(s)), " | ".join(
            human(res[(s, j["name"])]["store_bytes"]) for j in jobs), human(tot)))
    P("")
    if plots:
        P("### Plots")
        P("")
        for p, what in plots:
            P("- [%s](%s): %s" % (p, p, what))
        P("")
    P("### Systems")
    P("")
    for s in ran:
        P("- **%s**: %s" % (s, DESC[s]))
    for s, why in skipped.items():
        P("- **%s**: NOT RUN: %s" % (s, why))
    P("")
    P("Profiles: OUT/fio-suite/profile/SYSTEM.JOB.txt (`perf record -F 499 -g` on the tessera process during the timed job, first repetition; `perf report --no-children --sort dso,sym`). Commands: OUT/fio-suite/commands.txt.")
    P("")
    P("Checks: %s" % ("all systems produced numbers; every writable system passed verify (except rows known broken upstream)"
                      if checks["ok"] else "**PROBLEMS**: " + "; ".join(problems)))
    P("")
    open(os.path.join(out, "fio-summary.md"), "w").write("\n".join(md))
    print(json.dumps(checks))


def gnuplot(script, _outdir, **var):
    if not shutil.which("gnuplot"):
        return False
    e = "; ".join("%s='%s'" % (k, str(v).replace("'", "")) for k, v in var.items())
    r = subprocess.run(["gnuplot", "-e", e, os.path.join(HERE, "plot", script)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or not os.path.exists(var["out"]):
        sys.stderr.write("fio_report: gnuplot %s failed: %s\n" % (script, r.stdout[-400:]))
        return False
    return True


def make_plots(out, suite, jobs, res, ran, fw_rows, fwlib, lines):
    dd = os.path.join(out, "plot-data")
    os.makedirs(dd, exist_ok=True)
    plots = []
    if not shutil.which("gnuplot"):
        sys.stderr.write("fio_report: gnuplot is not installed: no plots\n")
        return plots
    for g, title, tsr, cmps in GROUPS:
        if tsr not in ran:
            continue
        syss = [tsr] + [c for c in cmps if c in ran]
        for metric, unit in (("iops", "IOPS"), ("mib_s", "MiB/s")):
            path = os.path.join(dd, "tput-%s-%s.dat" % (g, metric))
            with open(path, "w") as f:
                f.write("job " + " ".join(syss) + "\n")
                for j in jobs:
                    if j["metric"] != metric:
                        continue
                    f.write(j["name"] + " " + " ".join(
                        "%g" % res[(s, j["name"])]["value"] if res[(s, j["name"])]["value"] else "NaN"
                        for s in syss) + "\n")
        if not any(res[(s, j["name"])]["value"] for s in syss for j in jobs):
            sys.stderr.write("fio_report: group %s has no numbers: no plots\n" % g)
            continue
        png = "throughput-%s.png" % g
        if gnuplot("throughput.gp", out, out=os.path.join(out, png), iops=os.path.join(dd, "tput-%s-iops.dat" % g),
                   mibs=os.path.join(dd, "tput-%s-mib_s.dat" % g), n=len(syss), title=g + ": " + title):
            plots.append((png, "IOPS (4 KiB jobs) and MiB/s (1 MiB jobs) per job per system, group " + g))
        for pc in ("p50", "p99"):
            path = os.path.join(dd, "lat-%s-%s.dat" % (g, pc))
            with open(path, "w") as f:
                f.write("job " + " ".join(syss) + "\n")
                for j in jobs:
                    f.write(j["name"] + " " + " ".join(
                        "%g" % res[(s, j["name"])][pc + "_us"] if res[(s, j["name"])][pc + "_us"] else "NaN"
                        for s in syss) + "\n")
        png = "latency-%s.png" % g
        if gnuplot("latency.gp", out, out=os.path.join(out, png), p50=os.path.join(dd, "lat-%s-p50.dat" % g),
                   p99=os.path.join(dd, "lat-%s-p99.dat" % g), n=len(syss), title=g + ": " + title):
            plots.append((png, "completion latency p50 and p99 per job per system (log scale), group " + g))
    if fw_rows:
        path = os.path.join(dd, "first-write.dat")
        with open(path, "w") as f:
            f.write("bytes tessera_fuse overlayfs tessera_library\n")
            libm = {}
            for p, v in fwlib.items():
                libm[v[0][0]] = med([x[1] for x in v])
            allb = sorted({r["bytes"] for r in fw_rows} | set(libm))
            rows = {r["bytes"]: r for r in fw_rows}
            for b in allb:
                r = rows.get(b, {})
                f.write("%d %s %s %s\n" % (b, "%g" % r["tessera_fuse_p50_us"] if r.get("tessera_fuse_p50_us") else "NaN",
                                           "%g" % r["overlay_median_us"] if r.get("overlay_median_us") else "NaN",
                                           "%g" % libm[b] if b in libm else "NaN"))
        if gnuplot("first_write.gp", out, out=os.path.join(out, "first-write.png"), data=path,
                   lib=1 if fwlib else 0):
            plots.append(("first-write.png", "first-write latency (4 KiB write + fsync) against the inherited file's size, log-log"))
    # space: cumulative bytes written (x) -> allocated bytes (y), per system
    path = os.path.join(dd, "space.dat")
    n = 0
    with open(path, "w") as f:
        for s in ran:
            cum = 0
            pts = []
            for j in jobs:
                r = res[(s, j["name"])]
                cum += r["write_bytes"] or 0
                if cum > 0 and r["store_bytes"] is not None:
                    pts.append((cum, r["store_bytes"]))
            if not pts:
                continue
            f.write('"%s"\n' % s)
            for x, y in pts:
                f.write("%d %d\n" % (x, y))
            f.write("\n\n")
            n += 1
    if n and gnuplot("space.gp", out, out=os.path.join(out, "space.png"), data=path, n=n):
        plots.append(("space.png", "allocated bytes (store dir, qcow2 file, overlay upper dir, file) against the data written so far"))
    return plots


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One result line (JSON) from a fio JSON output, for bench/fio_suite.sh.

    fio_parse.py host JSON_FILE KEY=VALUE...
        prints one JSON object: the KEY=VALUE pairs (numbers converted) plus
        the figures of the fio run (iops, mib_s, p50_us, p99_us, ...), or
        "failed": REASON when the output cannot be read.
    fio_parse.py guest CONSOLE_LOG MARKS_FILE KEY=VALUE...
        the same for every job a vhost guest printed between
        TSR-FIO-JSON NAME / TSR-FIO-END NAME on its console; MARKS_FILE has
        lines "END NAME STORE_BYTES CPU_TICKS START_TICKS" written by the
        host while the guest ran.

Figures: iops and mib_s are read + write (a mixed job counts both);
p50_us / p99_us are completion-latency percentiles of the job's main
direction (reads for read and mixed jobs, writes for write jobs), with the
other direction's in r_p50_us/w_p50_us/...; write_bytes = bytes written.
"""
import json
import re
import sys


def conv(v):
    for f in (int, float):
        try:
            return f(v)
        except ValueError:
            pass
    return v


def pct(io, p):
    try:
        return io["clat_ns"]["percentile"][p] / 1000.0
    except (KeyError, TypeError):
        return None


def figures(doc, job):
    """Figures of fio's JSON document DOC for job name JOB."""
    jobs = doc["jobs"]
    j = jobs[0]
    r, w = j["read"], j["write"]
    d = {
        "iops": r["iops"] + w["iops"],
        "mib_s": (r["bw"] + w["bw"]) / 1024.0,
        "ios": r["total_ios"] + w["total_ios"],
        "write_bytes": w["io_bytes"],
        "read_bytes": r["io_bytes"],
        "errors": j.get("error", 0),
        "r_p50_us": pct(r, "50.000000") if r["total_ios"] else None,
        "r_p99_us": pct(r, "99.000000") if r["total_ios"] else None,
        "w_p50_us": pct(w, "50.000000") if w["total_ios"] else None,
        "w_p99_us": pct(w, "99.000000") if w["total_ios"] else None,
        "usr_cpu": j.get("usr_cpu"),
        "sys_cpu": j.get("sys_cpu"),
    }
    main = "w" if ("write" in job and "rw" not in job) or job == "verify" else "r"
    d["p50_us"] = d[main + "_p50_us"]
    d["p99_us"] = d[main + "_p99_us"]
    return d


def load_json_text(text):
    # fio may print warnings before the JSON document.
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def host(path, kv):
    d = dict(kv)
    try:
        d.update(figures(load_json_text(open(path, errors="replace").read()), d.get("job", "")))
        if not d["ios"]:
            d["failed"] = "no I/O"
    except Exception as e:  # noqa: BLE001 - any unreadable output is a failed run
        d["failed"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(d))


def guest(log, marks, kv):
    text = open(log, errors="replace").read()
    m = {}
    for line in open(marks):
        f = line.split()
        if len(f) >= 5 and f[0] == "END":
            m[f[1]] = (int(float(f[2])), int(float(f[3])), int(float(f[4])))
    verdict = re.search(r"^TSR-FIO-VERIFY (\S+)(.*)$", text, re.M)
    seen = set()
    for mo in re.finditer(r"^TSR-FIO-JSON (\S+)\r?\n(.*?)^TSR-FIO-END \1", text, re.S | re.M):
        job, body = mo.group(1), mo.group(2)
        seen.add(job)
        d = dict(kv)
        d["job"] = job
        try:
            d.update(figures(load_json_text(body), job))
            if not d["ios"]:
                d["failed"] = "no I/O"
        except Exception as e:  # noqa: BLE001
            d["failed"] = "%s: %s" % (type(e).__name__, e)
        if job in m:
            d["store_bytes"] = m[job][0]
            d["daemon_cpu_ticks"] = m[job][1] - m[job][2]
        if job == "verify":
            d["verify"] = "pass" if verdict and verdict.group(1) == "pass" else "fail"
            if d["verify"] == "fail":
                d["verify_msg"] = (verdict.group(2).strip() if verdict else "no verdict on the console")[:300]
        print(json.dumps(d))
    return seen


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "host":
        host(sys.argv[2], [(k, conv(v)) for k, v in (a.split("=", 1) for a in sys.argv[3:])])
    elif mode == "guest":
        guest(sys.argv[2], sys.argv[3], [(k, conv(v)) for k, v in (a.split("=", 1) for a in sys.argv[4:])])
    else:
        sys.exit("usage: fio_parse.py host|guest ...")

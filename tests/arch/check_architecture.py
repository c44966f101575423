#!/usr/bin/env python3
"""The architecture the folders show, checked on the built objects.

  check_architecture.py SOURCE_DIR BUILD_DIR

Fails (exit 1, one line per finding) when
  - the files of one module call each other in a circle: A -> B when an
    object of A leaves undefined a symbol that an object of B defines
    (nm), within the module's own library or executable;
  - the modules call each other in a circle (the same graph, one node per
    module);
  - tools/ (option parsing, output and composition only) calls mount(2),
    LMDB or jansson, or uses loop-device ioctls or their headers.

Objects are found under BUILD_DIR/<module>/CMakeFiles/<target>.dir/; bench/
and tests/ are not modules, and generated protobuf code (gen/) is one file
group of the snapshotter that nothing of ours is written in.
"""
import os
import re
import subprocess
import sys

MODULE_ORDER_HINT = "blockstore < unixsock < fuse, vhost < imagefmt < snapshotter, daemon < tools"
NOT_MODULES = {"bench", "tests"}
# What tools/ must leave to the modules, as linker symbols ...
TOOLS_FORBIDDEN_SYMBOLS = re.compile(r"^(mount|umount|umount2|mdb_\w+|json_\w+)$")
# ... and as source text (ioctls are macros, headers are includes).
TOOLS_FORBIDDEN_TEXT = [
    (re.compile(r"#\s*include\s*<(sys/mount\.h|linux/loop\.h|lmdb\.h|jansson\.h)>"), "includes {0}"),
    (re.compile(r"\bLOOP_(CONFIGURE|SET_FD|CLR_FD|SET_STATUS64|GET_STATUS64|CTL_GET_FREE)\b"), "uses the loop ioctl {0}"),
]


def objects(src_dir, build_dir):
    """Yields (module, file, object path) for each object of our modules
    whose source file still exists (a build tree keeps the objects of
    files that were since removed)."""
    for root, _dirs, files in os.walk(build_dir):
        rel = os.path.relpath(root, build_dir)
        parts = rel.split(os.sep)
        if len(parts) < 3 or parts[1] != "CMakeFiles" or parts[0] in NOT_MODULES:
            continue
        if "gen" in parts:
            continue
        for f in files:
            if f.endswith(".c.o"):
                src = os.path.join(*parts[3:], f[:-2]) if len(parts) > 3 else f[:-2]
                if not os.path.exists(os.path.join(src_dir, parts[0], src)):
                    continue
                yield parts[0], f"{parts[0]}:{parts[2]}:{src}", os.path.join(root, f)


def symbols(path):
    out = subprocess.run(["nm", "--defined-only", "-g", path], capture_output=True,
                         text=True, check=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if l.strip()}
    out = subprocess.run(["nm", "-u", path], capture_output=True, text=True,
                         check=True).stdout
    undefined = {l.split()[-1] for l in out.splitlines() if l.strip()}
    return defined, undefined


def cycles(nodes, edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    src_dir, build_dir = sys.argv[1], sys.argv[2]
    findings = []
    files = {}          # file -> (module, group, defined, undefined)
    definer = {}        # (group, symbol) -> file
    module_of_symbol = {}
    for module, name, path in objects(src_dir, build_dir):
        d, u = symbols(path)
        group = name.rsplit(":", 1)[0]
        files[name] = (module, group, d, u)
        for s in d:
            definer[(group, s)] = name
            module_of_symbol.setdefault(s, module)
    if not files:
        print(f"no objects under {build_dir}: build first", file=sys.stderr)
        return 2

    # Files within one module (one library or executable).
    edges = {}
    for name, (module, group, _d, u) in files.items():
        for s in u:
            other = definer.get((group, s))
            if other and other != name:
                edges.setdefault(name, set()).add(other)
    for comp in cycles(files.keys(), edges):
        findings.append("files call each other in a circle: " +
                        " -> ".join(c.split(":", 2)[2] for c in comp))

    # Modules.
    medges, mods = {}, set()
    for name, (module, _g, _d, u) in files.items():
        mods.add(module)
        for s in u:
            other = module_of_symbol.get(s)
            if other and other != module:
                medges.setdefault(module, set()).add(other)
    for comp in cycles(mods, medges):
        findings.append("modules call each other in a circle: " + " <-> ".join(comp) +
                        f" (intended order: {MODULE_ORDER_HINT})")

    # tools/ composes; it does not mount, open LMDB or write JSON itself.
    for name, (module, _g, _d, u) in files.items():
        if module != "tools":
            continue
        for s in sorted(u):
            if TOOLS_FORBIDDEN_SYMBOLS.match(s):
                findings.append(f"{name.split(':', 2)[2]}: tools/ calls {s}() "
                                "(belongs in a module)")
    tools_dir = os.path.join(src_dir, "tools")
    for f in sorted(os.listdir(tools_dir)):
        if not f.endswith((".c", ".h")):
            continue
        with open(os.path.join(tools_dir, f), encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                for rx, what in TOOLS_FORBIDDEN_TEXT:
                    m = rx.search(line)
                    if m:
                        findings.append(f"tools/{f}:{lineno}: " +
                                        what.format(m.group(1) if m.groups() else m.group(0)))

    for f in findings:
        print(f)
    print(f"check_architecture: {len(files)} objects in {len(mods)} modules, "
          f"{len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())

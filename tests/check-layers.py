#!/usr/bin/env python3
# check-layers.py: the shape of src/ (docs/architecture.md, "Layers").
#
# A unit is a .c with the .h of the same name; its includes are the
# #include "herald-*.h" lines of both. Every unit belongs to one layer; a
# unit may include only units of its own layer or of the layers its layer
# may use, and no units may include each other in a cycle. The hub's units
# must compile without libsoup: no header in their include closure may
# include <libsoup/...>. Fails (exit 1) naming each offence.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import fnmatch
import os
import re
import sys

# Layers top to bottom, each with the unit names (fnmatch patterns) in it.
LAYERS = [
    ("main", ["main", "herald-daemon", "herald-listen-guard", "herald-token-gen"]),
    ("front", ["herald-front", "herald-http", "herald-http-*", "herald-security", "herald-proxy",
               "herald-dbus", "herald-dbus-*", "herald-prefix-input-stream"]),
    ("hub", ["herald-hub", "herald-hub-*", "herald-subscribe", "herald-router",
             "herald-protocol", "herald-protocol-*"]),
    ("auth", ["herald-jwt", "herald-jwt-*"]),
    ("engine", ["herald-engine", "herald-engine-*", "herald-memory-engine",
                "herald-memory-engine-*", "herald-redis-*"]),
    ("shard", ["herald-worker", "herald-worker-*", "herald-backend"]),
    ("stream", ["herald-connection", "herald-connection-*", "herald-channel", "herald-loop",
                "herald-send-batch"]),
    ("message", ["herald-message", "herald-json", "herald-json-*", "herald-error",
                 "herald-log", "herald-info", "herald-ws", "herald-ws-*", "herald-base64*",
                 "herald-valid*", "herald-names", "herald-metrics"]),
    ("config", ["herald-config", "herald-config-*", "herald-listen-address",
                "herald-namespace"]),
]

# What each layer may use besides itself. Config is a value object all may
# read. The stream carries a connection's verified claims as a value
# (herald-jwt.h) but never verifies a token.
MAY_USE = {
    "main": {"front", "hub", "auth", "engine", "shard", "stream", "message", "config"},
    "front": {"hub", "auth", "engine", "shard", "stream", "message", "config"},
    "hub": {"auth", "engine", "shard", "stream", "message", "config"},
    "auth": {"message", "config"},
    "engine": {"message", "config"},
    "shard": {"stream", "message", "config"},
    "stream": {"auth", "message", "config"},
    "message": {"config"},
    "config": set(),
}

# Units that must compile without libsoup (the hub knows no HTTP).
NO_SOUP_LAYERS = {"hub", "auth", "engine", "shard", "stream", "message", "config"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"(herald-[\w.-]+)\.h"', re.M)
SOUP = re.compile(r'^\s*#\s*include\s+<libsoup/', re.M)


def layer_of(unit):
    for name, patterns in LAYERS:
        if any(fnmatch.fnmatchcase(unit, p) for p in patterns):
            return name
    return None


def check(src):
    """Returns the offences found in the directory @src."""
    files = {f for f in os.listdir(src) if f.endswith((".c", ".h"))}
    text = {f: open(os.path.join(src, f), errors="replace").read() for f in files}
    units = sorted(os.path.splitext(f)[0] for f in files if f.endswith(".c"))
    problems = []

    deps = {}
    for u in units:
        body = text[u + ".c"] + text.get(u + ".h", "")
        deps[u] = {d for d in INCLUDE.findall(body) if d != u and d + ".c" in files}

    for u in units:
        lu = layer_of(u)
        if lu is None:
            problems.append("%s is in no layer: add it to LAYERS in tests/check-layers.py "
                            "(and docs/architecture.md)" % u)
            continue
        for d in sorted(deps[u]):
            ld = layer_of(d)
            if ld is not None and ld != lu and ld not in MAY_USE[lu]:
                problems.append("%s (%s) includes %s (%s): a %s unit may use only %s"
                                % (u, lu, d, ld, lu, ", ".join(sorted(MAY_USE[lu])) or "itself"))

    # Cycles (Tarjan's strongly connected components).
    index, low, stack, on, counter = {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
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
                problems.append("units that include each other in a cycle: " + ", ".join(sorted(comp)))

    sys.setrecursionlimit(10000)
    for u in units:
        if u not in index:
            visit(u)

    # Include closure of each lower unit's .c: no libsoup header in it.
    for u in units:
        if layer_of(u) not in NO_SOUP_LAYERS:
            continue
        seen, todo = set(), [u + ".c"]
        while todo:
            f = todo.pop()
            if f in seen or f not in text:
                continue
            seen.add(f)
            if SOUP.search(text[f]):
                problems.append("%s.c compiles with libsoup: %s includes <libsoup/...>" % (u, f))
            todo.extend(h + ".h" for h in INCLUDE.findall(text[f]))

    return problems, len(units)


def self_test():
    """The check itself: a tree with each offence must be refused for it."""
    import tempfile
    tree = {
        "herald-message.c": '#include "herald-message.h"\n',
        "herald-message.h": "",
        "herald-connection.c": '#include "herald-connection.h"\n',
        "herald-connection.h": '#include "herald-message.h"\n',
        "herald-worker.c": '#include "herald-worker.h"\n#include "herald-connection.h"\n',
        "herald-worker.h": "#include <libsoup/soup.h>\n",
        "herald-hub.c": '#include "herald-hub.h"\n#include "herald-worker.h"\n',
        "herald-hub.h": '#include "herald-engine.h"\n',
        "herald-engine.c": '#include "herald-engine.h"\n#include "herald-hub.h"\n',
        "herald-engine.h": '#include "herald-connection.h"\n',
        "herald-stray.c": "",
    }
    want = [
        "herald-engine (engine) includes herald-connection (stream)",
        "herald-engine (engine) includes herald-hub (hub)",
        "herald-stray is in no layer",
        "units that include each other in a cycle: herald-engine, herald-hub",
        "herald-hub.c compiles with libsoup: herald-worker.h includes <libsoup/...>",
        "herald-worker.c compiles with libsoup: herald-worker.h includes <libsoup/...>",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in tree.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(body)
        problems, _ = check(tmp)
    missing = [w for w in want if not any(p.startswith(w) for p in problems)]
    for w in missing:
        print("self-test: not refused: " + w)
    for p in problems:
        if not any(p.startswith(w) for w in want):
            print("self-test: refused for no reason: " + p)
    ok = not missing and len(problems) == len(want)
    print("self-test: %s" % ("every offence refused" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    problems, n_units = check(src)
    for p in problems:
        print(p)
    if problems:
        return 1
    print("%d units in %d layers: no cycle, no upward include, no libsoup below the fronts"
          % (n_units, len(LAYERS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

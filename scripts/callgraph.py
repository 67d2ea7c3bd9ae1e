#!/usr/bin/env python3
"""Checks that the C core's object files call one way: builds the graph
"a.o uses a symbol b.o defines" from `nm` and fails, printing the cycle, when
the graph has one; with --ordered, the OBJ... are in build order (the Makefile's,
bottom up) and it also fails when a file calls one listed after it (the layering
that README.md and docs/core.md describe). Usage: callgraph.py [--print] [--ordered] OBJ..."""
import subprocess
import sys


def symbols(obj):
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRC":
            defined.add(parts[2])
    return defined, used


def name(obj):
    return obj.rsplit("/", 1)[-1][:-2]


def main(argv):
    show = "--print" in argv
    ordered = "--ordered" in argv
    given = [a for a in argv if a.endswith(".o")]
    objs = sorted(given)
    if not objs:
        print("callgraph: no object files given", file=sys.stderr)
        return 2
    owner, uses = {}, {}
    for obj in objs:
        defined, used = symbols(obj)
        for sym in defined:
            owner[sym] = name(obj)
        uses[name(obj)] = used
    graph = {n: sorted({owner[s] for s in used if s in owner and owner[s] != n}) for n, used in uses.items()}
    if show:
        for n in sorted(graph):
            print("%-14s -> %s" % (n, " ".join(graph[n]) or "(nothing)"))
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            if cycle:
                print("callgraph: the object files call in a cycle: " + " -> ".join(cycle), file=sys.stderr)
                return 1
    if ordered:
        rank = {name(o): i for i, o in enumerate(given)}
        up = ["%s -> %s" % (n, m) for n in sorted(graph) for m in graph[n] if rank[m] > rank[n]]
        if up:
            print("callgraph: calls up the build order (a file calls one listed after it): " + ", ".join(up),
                  file=sys.stderr)
            return 1
        print("callgraph: %d object files, no cycle, every call down the build order" % len(graph))
        return 0
    print("callgraph: %d object files, no cycle" % len(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

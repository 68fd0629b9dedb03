#!/usr/bin/env python3
"""Fails when an #include crosses the room order that docs/development.md states.

The "## Rooms" table there is the rule: its third column says which rooms (written `name/`) and which checked
libraries a room may include; what a room may include, the rooms it names may include too. Every folder holding
C++ or CUDA sources must be in the table, project headers are included by their room-qualified path, and the
table itself must have no cycle. Usage: check_rooms.py <source dir>.
"""
import os
import re
import sys

# Libraries whose headers are checked, by the name the table uses.
LIBRARIES = {
    "CAF": re.compile(r"^caf/"),
    "ZeroMQ": re.compile(r"^zmq(\.h|\.hpp|_addon\.hpp)$"),
    "libpcap": re.compile(r"^pcap(\.h|/)"),
    "SQLite": re.compile(r"^sqlite3\.h$"),
    "CUDA": re.compile(r"^(cuda|cublas|cuda_runtime|cuda_bf16|cuda_fp8)"),
    "NCCL": re.compile(r"^nccl\.h$"),
}
SOURCE = re.compile(r"\.(cpp|hpp|inc|cu|cuh)$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def read_table(root):
    text = open(os.path.join(root, "docs", "development.md"), encoding="utf-8").read()
    section = text.split("\n## Rooms\n", 1)
    if len(section) != 2:
        sys.exit("docs/development.md has no '## Rooms' section")
    rules = {}
    for line in section[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        room = re.fullmatch(r"`?([a-z0-9_]+)/`?", cells[0])
        if not room:
            continue
        allowed = cells[2]
        everything = allowed.strip().lower().startswith("everything")
        rooms = set(re.findall(r"`?([a-z0-9_]+)/`?", allowed))
        libs = {name for name in LIBRARIES if re.search(r"\b%s\b" % re.escape(name), allowed)}
        rules[room.group(1)] = (everything, rooms, libs)
    if not rules:
        sys.exit("docs/development.md's Rooms table has no rows")
    return rules


def closure(rules):
    """Each room's allowed rooms and libraries, following the rooms it names; exits on a cycle."""
    done, state = {}, {}

    def visit(room, path):
        if state.get(room) == "open":
            sys.exit("the Rooms table has a cycle: " + " -> ".join(path + [room]))
        if room in done:
            return done[room]
        if room not in rules:
            sys.exit("the Rooms table names %s/, which has no row" % room)
        state[room] = "open"
        everything, rooms, libs = rules[room]
        all_rooms, all_libs = set(rooms), set(libs)
        for r in rooms:
            sub_rooms, sub_libs = visit(r, path + [room])
            all_rooms |= sub_rooms
            all_libs |= sub_libs
        state[room] = "closed"
        done[room] = (all_rooms, all_libs)
        return done[room]

    for room in rules:
        visit(room, [])
    return done


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    rules = read_table(root)
    allowed = closure(rules)
    errors = []
    skip = {".git", "build", "models", "node_modules", "third_party"}
    for top in sorted(os.listdir(root)):
        path = os.path.join(root, top)
        if not os.path.isdir(path) or top.startswith(".") or top in skip or top.startswith("build-"):
            continue
        files = []
        for dirpath, _, names in os.walk(path):
            files += [os.path.join(dirpath, n) for n in names if SOURCE.search(n)]
        if not files:
            continue
        if top not in rules:
            errors.append("%s/ holds sources but is not in docs/development.md's Rooms table" % top)
            continue
        everything = rules[top][0]
        rooms, libs = allowed[top]
        for f in sorted(files):
            rel = os.path.relpath(f, root)
            for n, line in enumerate(open(f, encoding="utf-8", errors="replace"), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, target = m.groups()
                where = "%s:%d: #include %s" % (rel, n, target)
                if kind == '"':
                    first = target.split("/", 1)[0]
                    if "/" not in target or first not in rules:
                        errors.append(where + " is not a room-qualified path")
                    elif not everything and first != top and first not in rooms:
                        errors.append(where + " reaches %s/, which %s/ may not include" % (first, top))
                elif not everything:
                    for name, pattern in LIBRARIES.items():
                        if pattern.search(target) and name not in libs:
                            errors.append(where + " uses %s, which %s/ may not include" % (name, top))
    for e in errors:
        print(e)
    if errors:
        print("%d include(s) cross the room order (docs/development.md, Rooms)" % len(errors))
        return 1
    print("includes follow the room order: %d rooms checked" % len(rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())

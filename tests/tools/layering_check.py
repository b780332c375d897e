#!/usr/bin/env python3
"""The floors hold: parsers -> devices -> rerun -> transport -> daemon.

A source folder includes only headers of its own floor and the floors below it, and each library
links exactly the project libraries whose headers it includes (README "Layout"). CMake passes every
library as NAME=FOLDER=LINKS (its LINK_LIBRARIES), so this test reads the real link lists, not a
copy of them. Third-party headers are checked per floor too: parsers use the standard library
only; devices and rerun may parse JSON but do no I/O; time zones (date/tz over the system's tzdata)
from rerun up, where lab_time converts times (devices and parsers carry times as sent).

Usage: layering_check.py SOURCE_DIR NAME=FOLDER=LINK;LINK... ...
Exit 0 when everything holds, 1 with one line per violation (file:line: what, and the rule).
"""
import pathlib
import re
import sys

FLOORS = ["parsers", "devices", "rerun", "transport", "daemon"]
# Third-party include prefixes a floor must not use (the floors above may).
FORBIDDEN_THIRD_PARTY = {
    "parsers": ["boost/", "nlohmann/", "spdlog/", "CLI/", "sqlite3", "openssl/", "libserial/", "systemd/", "date/"],
    # date/: rerun/lab_time.hpp is the one conversion of times; a device passes them on as sent.
    "devices": ["boost/", "spdlog/", "CLI/", "sqlite3", "openssl/", "libserial/", "systemd/", "date/"],
    "rerun": ["boost/", "spdlog/", "CLI/", "sqlite3", "openssl/", "libserial/", "systemd/"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def folder_of(rel: pathlib.PurePosixPath) -> str:
    """The library folder a file belongs to: daemon/sim is its own library on the daemon floor."""
    parts = rel.parts
    if parts[0] == "daemon" and len(parts) > 2 and parts[1] == "sim":
        return "daemon/sim"
    return parts[0]


def floor_of(folder: str) -> int:
    return FLOORS.index(folder.split("/")[0])


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 64
    root = pathlib.Path(sys.argv[1])
    libs = {}  # folder -> (library name, set of linked project folders)
    by_target = {}
    specs = [a.split("=", 2) for a in sys.argv[2:]]
    for name, folder, _ in specs:
        by_target[name] = folder
    for name, folder, links in specs:
        linked = set()
        for item in links.split(";"):
            item = item.strip().replace("interfaced::", "interfaced_")
            if item in by_target:
                linked.add(by_target[item])
        libs[folder] = (name, linked)

    problems = []
    included = {folder: set() for folder in libs}
    for floor in FLOORS:
        for path in sorted((root / floor).rglob("*")):
            if path.suffix not in (".hpp", ".cpp", ".h"):
                continue
            rel = pathlib.PurePosixPath(path.relative_to(root).as_posix())
            src = folder_of(rel)
            for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, header = m.groups()
                if kind == "<":
                    for bad in FORBIDDEN_THIRD_PARTY.get(src, []):
                        if header.startswith(bad):
                            problems.append(f"{rel}:{lineno}: #include <{header}>: {src}/ may not use {bad.rstrip('/')}")
                    continue
                target_rel = pathlib.PurePosixPath(header)
                if target_rel.parts[0] not in FLOORS:
                    continue  # a header of the same folder named relatively, or a generated one
                dst = folder_of(target_rel)
                if floor_of(dst) > floor_of(src):
                    problems.append(f"{rel}:{lineno}: #include \"{header}\" goes up from {src}/ to {dst}/ "
                                    f"(floors: {' -> '.join(FLOORS)})")
                if src == "daemon/sim" and dst == "daemon" and header != "daemon/exit_codes.hpp":
                    problems.append(f"{rel}:{lineno}: #include \"{header}\": the simulators use transport and "
                                    "below, never the daemon's wiring (only daemon/exit_codes.hpp)")
                if dst != src and src in included:
                    included[src].add(dst)

    for folder, (name, linked) in sorted(libs.items()):
        uses = {d for d in included.get(folder, set()) if d in libs}
        # daemon/exit_codes.hpp is header-only: including it needs no link.
        if folder == "daemon/sim":
            uses.discard("daemon")
        for d in sorted(uses - linked):
            problems.append(f"{name} ({folder}/) includes {d}/ headers but does not link {libs[d][0]}")
        for d in sorted(linked - uses):
            problems.append(f"{name} ({folder}/) links {libs[d][0]} but includes none of its headers")

    for p in problems:
        print(p)
    print(f"layering: {len(libs)} libraries, {sum(len(v) for v in included.values())} folder dependencies, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

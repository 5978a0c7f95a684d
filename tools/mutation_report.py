"""The kill rate per file of the last mutmut run (tools/mutation.sh), from mutants/*.meta.

    python tools/mutation_report.py                      # every mutated file
    python tools/mutation_report.py "services.auth.*"    # the files these mutmut name patterns fall in
    python tools/mutation_report.py --check-docs "handlers.base.*" ...
                                                         # and: is every survivor explained in docs/history/mutants.md?

docs/history/mutants.md explains each survivor in a table row under the heading of its file (`## handlers/base.py`):
`| <function> | <numbers> | change | why |`, the function as mutmut names it without the module
(`xǁBaseHandlerǁoptions`, `x_hash_token`), the numbers as `3, 4, 10-12`. --check-docs exits 1 when a
survivor has no row, or a row names a mutant that is not a survivor (killed since, or renumbered).

A mutant counts as killed when a test failed against it (or it timed out); "no tests" means no fast
test reaches that function at all, which is a survivor too. Mutants not checked yet are reported apart.
"""

import fnmatch
import glob
import json
import os
import re
import sys

from mutmut.stats import status_by_exit_code

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLED = {"killed", "timeout", "caught by type check"}


def tally(patterns: list) -> dict:
    """file -> {status: [mutant names]} over the mutants matching the patterns (all when none)."""
    found = {}
    for meta_path in sorted(glob.glob(os.path.join(ROOT, "mutants", "**", "*.py.meta"), recursive=True)):
        with open(meta_path, encoding="utf-8") as f:
            exit_codes = json.load(f)["exit_code_by_key"]
        source = os.path.relpath(meta_path, os.path.join(ROOT, "mutants"))[: -len(".meta")]
        for name, code in exit_codes.items():
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            found.setdefault(source, {}).setdefault(status_by_exit_code[code], []).append(name)
    return found


DOCS = os.path.join(ROOT, "docs", "history", "mutants.md")
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([0-9][0-9,\s-]*)\|")


def documented(path: str = DOCS) -> set:
    """The mutant names docs/history/mutants.md explains, e.g. handlers.base.xǁBaseHandlerǁoptions__mutmut_6."""
    names, module = set(), None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                heading = line[3:].strip()
                module = heading[:-3].replace("/", ".") if heading.endswith(".py") else None
            elif module and (row := ROW.match(line)):
                for part in row.group(2).replace(" ", "").strip(",").split(","):
                    first, _, last = part.partition("-")
                    for number in range(int(first), int(last or first) + 1):
                        names.add(f"{module}.{row.group(1)}__mutmut_{number}")
    return names


def check_docs(found: dict, patterns: list = ()) -> int:
    """1 when the survivors and docs/history/mutants.md's rows differ, naming each difference (only the rows the
    patterns match: a run over some functions of a file says nothing about the others' rows)."""
    survivors = {
        name
        for by_status in found.values()
        for status, names in by_status.items()
        if status not in KILLED and status != "not checked"
        for name in names
    }
    modules = {source[:-3].replace(os.sep, ".") for source in found}
    explained = {
        name
        for name in documented()
        if name.rsplit(".", 1)[0] in modules and (not patterns or any(fnmatch.fnmatch(name, p) for p in patterns))
    }
    for name in sorted(survivors - explained):
        print(f"not in docs/history/mutants.md: {name}")
    for name in sorted(explained - survivors):
        print(f"in docs/history/mutants.md but not a survivor: {name}")
    print(f"docs/history/mutants.md explains {len(survivors & explained)} of {len(survivors)} survivors")
    return int(survivors != explained)


def main(patterns: list, docs: bool = False) -> int:
    found = tally(patterns)
    if not found:
        print("no mutants found: run tools/mutation.sh first")
        return 1
    total_killed = total_checked = 0
    print(f"{'file':32} {'mutants':>7} {'killed':>7} {'rate':>7}  other")
    for source, by_status in found.items():
        killed = sum(len(by_status.get(s, [])) for s in KILLED)
        unchecked = len(by_status.get("not checked", []))
        checked = sum(len(names) for names in by_status.values()) - unchecked
        other = {s: len(n) for s, n in by_status.items() if s not in KILLED}
        rate = f"{100 * killed / checked:.1f}%" if checked else "-"
        print(f"{source:32} {checked:7} {killed:7} {rate:>7}  {other or ''}")
        total_killed += killed
        total_checked += checked
    if total_checked:
        print(f"{'total':32} {total_checked:7} {total_killed:7} {100 * total_killed / total_checked:6.1f}%")
    for by_status in found.values():
        for status, names in by_status.items():
            if status not in KILLED and status != "not checked":
                for name in names:
                    print(f"{status}: {name}")
    return check_docs(found, patterns) if docs else 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(main([a for a in arguments if a != "--check-docs"], docs="--check-docs" in arguments))

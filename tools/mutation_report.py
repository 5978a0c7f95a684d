"""The kill rate per file of the last mutmut run (tools/mutation.sh), from mutants/*.meta.

    python tools/mutation_report.py                      # every mutated file
    python tools/mutation_report.py "services.auth.*"    # the files these mutmut name patterns fall in

A mutant counts as killed when a test failed against it (or it timed out); "no tests" means no fast
test reaches that function at all, which is a survivor too. Mutants not checked yet are reported apart.
"""
import fnmatch
import glob
import json
import os
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
        source = os.path.relpath(meta_path, os.path.join(ROOT, "mutants"))[:-len(".meta")]
        for name, code in exit_codes.items():
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            found.setdefault(source, {}).setdefault(status_by_exit_code[code], []).append(name)
    return found


def main(patterns: list) -> int:
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
    for source, by_status in found.items():
        for status, names in by_status.items():
            if status not in KILLED and status != "not checked":
                for name in names:
                    print(f"{status}: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

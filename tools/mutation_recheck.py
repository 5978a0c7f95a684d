"""Re-test the survivors of the last mutmut run against the test files that changed since.

    python tools/mutation_recheck.py tests/http/test_errors.py tests/helpers.py ... [--mutants PATTERN ...]

A full `tools/mutation.sh` re-run costs a minute per surviving mutant of handlers/base.py (every test
reaches it). After tests are added, only the changed test files can kill a survivor: the rest of the
suite already let it live. So this copies the given files into mutants/tests/, runs the test modules
among them under each survivor (MUTANT_UNDER_TEST, as mutmut does), and records a failing run as killed
in mutants/*.meta, where tools/mutation_report.py and `mutmut results` read it. List every test file
changed since the run (`git diff --name-only <run's commit> -- tests/`) and the helpers they import.

Valid only while the mutated functions are unchanged since the run: `tools/mutation.sh` re-tests a
function whose source changed (mutmut compares function hashes), so run it first after code changes.
"""

import argparse
import fnmatch
import glob
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTANTS = os.path.join(ROOT, "mutants")
SURVIVED = {0, 33}  # tests passed; no test reached the function
KILLED = 1
PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-n", "0", "-m", "not slow or heavy"]


def run_tests(mutant: str, test_files: list) -> int:
    env = {**os.environ, "MUTANT_UNDER_TEST": mutant}
    modules = [name for name in test_files if os.path.basename(name).startswith("test_")]
    return subprocess.run(PYTEST + modules, cwd=MUTANTS, env=env, capture_output=True).returncode


def main(files: list, patterns: list) -> int:
    for name in files:
        shutil.copyfile(os.path.join(ROOT, name), os.path.join(MUTANTS, name))
    clean = run_tests("", files)
    if clean != 0:
        print(f"the changed tests fail without any mutant (exit {clean}): fix them first")
        return 1
    metas = {}
    survivors = []
    for meta_path in sorted(glob.glob(os.path.join(MUTANTS, "**", "*.py.meta"), recursive=True)):
        with open(meta_path, encoding="utf-8") as f:
            metas[meta_path] = json.load(f)
        for name, code in metas[meta_path]["exit_code_by_key"].items():
            if code in SURVIVED and (not patterns or any(fnmatch.fnmatch(name, p) for p in patterns)):
                survivors.append((meta_path, name))
    print(f"{len(survivors)} survivors, against {len(files)} changed test files")
    with ThreadPoolExecutor(int(os.environ.get("MAX_CHILDREN", "2"))) as pool:
        codes = list(pool.map(lambda survivor: run_tests(survivor[1], files), survivors))
    killed, changed = 0, set()
    for (meta_path, name), code in zip(survivors, codes, strict=False):
        if code == KILLED:
            metas[meta_path]["exit_code_by_key"][name] = KILLED
            changed.add(meta_path)
            killed += 1
        elif code != 0:
            print(f"{name}: pytest exit {code} (not counted)")
    for meta_path in changed:  # only these: another recheck of other files may be writing the rest
        with open(meta_path, "w", encoding="utf-8") as f:
            json.dump(metas[meta_path], f)
    print(f"killed now: {killed} of {len(survivors)}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="test files changed since the run, relative to the root")
    parser.add_argument("--mutants", action="append", default=[], help="mutmut name patterns (default: all)")
    arguments = parser.parse_args()
    sys.exit(main(arguments.files, arguments.mutants))

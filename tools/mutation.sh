#!/bin/sh
# Mutation testing with mutmut 3 (pip install -r requirements-dev.txt), by hand, never in CI.
#
#   tools/mutation.sh                 # the guarded files (see GUARDED below)
#   tools/mutation.sh "services.*"    # any mutmut name patterns: module.function or module.xǁClassǁmethod
#   MAX_CHILDREN=4 tools/mutation.sh  # more parallel workers (default 2: the machine is shared)
#
# Configuration: setup.cfg [mutmut]. Results stay in mutants/ (git-ignored): afterwards
#   python -m mutmut results          # the survivors
#   python -m mutmut show <name>      # one survivor's diff
#   python -m mutmut run <name>       # re-test one after adding a test
# A fresh start: rm -rf mutants/
set -euf  # -f: the name patterns are for mutmut, not for the shell
cd "$(dirname "$0")/.."
GUARDED='services.sessions.* services.auth.* services.login_attempts.* services.organisations.* handlers.base.*'
if [ "$#" -eq 0 ]; then
    # shellcheck disable=SC2086
    set -- $GUARDED
fi
# nice: 8 engineers share 2 cores. The run is resumable: interrupt it and start it again.
nice -n 19 python -m mutmut run --max-children "${MAX_CHILDREN:-2}" "$@"
python tools/mutation_report.py "$@"

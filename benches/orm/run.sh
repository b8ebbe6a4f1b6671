#!/usr/bin/env bash
# ORM benchmark (issue 18): the same Django workload on Django + SQLite, on djongo with the
# embedded engine, and as raw pymongo calls on that engine; writes benches/orm/results.{md,json,png}.
#
#   benches/orm/run.sh                     # 5,000 entries (a few minutes)
#   LARGE=1 benches/orm/run.sh             # also 500,000 entries (long: loading alone takes minutes)
#   COMPARE=/path/to/checkout benches/orm/run.sh
#                                          # also measure another checkout's djongo (built here
#                                          # with `scripts/setup --release` in that checkout)
#   COMPARE_LABEL=e3c810a                  # its column's name (default: its git HEAD; needed for
#                                          # a tree exported with `git archive`, which has no .git)
#   COMPARE_PYTHON=/path/to/.venv/bin/python COMPARE_LABEL=main benches/orm/run.sh
#                                          # the same with an interpreter whose djongo is built
#                                          # already (nothing is built in that checkout)
#   OP_TIMEOUT=300                         # seconds an operation may take (default 600)
#   IN_PROCESS=1 benches/orm/run.sh        # also djongo with STORE_SERVER "in-process" (the
#                                          # process serves the store itself)
#   OPS=get_pk,range_sort BACKENDS=sqlite,djongo OUT=/tmp/orm LARGE=1 benches/orm/run.sh
#                                          # only these operations and columns (bench.py
#                                          # --help lists them), results written to OUT
#                                          # (default: benches/orm)
#   REPEAT=2 benches/orm/run.sh            # each operation twice at each size, in turn; the
#                                          # better of the two is kept
#   LOADED=/tmp/orm-loaded benches/orm/run.sh
#                                          # keep the loaded stores there and reuse them in
#                                          # later runs (remove the directory when done)
#
# The extension is built with the release profile (scripts/setup --release) first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/benches/orm"
cd "$ROOT"

scripts/setup --release
PY="$ROOT/.venv/bin/python"
"$PY" -c 'import matplotlib' 2>/dev/null || "$PY" -m pip install --quiet "matplotlib>=3.8"

ROWS=(--rows 5000)
if [ "${LARGE:-0}" = 1 ]; then
    ROWS+=(--rows 500000)
fi
EXTRA=()
if [ "${IN_PROCESS:-0}" = 1 ]; then
    EXTRA+=(--in-process)
fi
if [ -n "${COMPARE:-}" ]; then
    (cd "$COMPARE" && scripts/setup --release)
    LABEL="${COMPARE_LABEL:-$(git -C "$COMPARE" rev-parse --short HEAD)}"
    EXTRA+=(--compare "$LABEL=$COMPARE/.venv/bin/python")
elif [ -n "${COMPARE_PYTHON:-}" ]; then
    EXTRA+=(--compare "${COMPARE_LABEL:-compare}=$COMPARE_PYTHON")
fi
if [ -n "${OPS:-}" ]; then
    EXTRA+=(--ops "$OPS")
fi
if [ -n "${REPEAT:-}" ]; then
    EXTRA+=(--repeat "$REPEAT")
fi
if [ -n "${LOADED:-}" ]; then
    EXTRA+=(--loaded "$LOADED")
fi
if [ -n "${BACKENDS:-}" ]; then
    EXTRA+=(--backends "$BACKENDS")
fi
"$PY" "$HERE/bench.py" "${ROWS[@]}" --out "${OUT:-$HERE}" --label "$(git rev-parse --short HEAD)" \
    --op-timeout "${OP_TIMEOUT:-600}" "${EXTRA[@]}" \
    --command "${IN_PROCESS:+IN_PROCESS=$IN_PROCESS }${LARGE:+LARGE=$LARGE }${OPS:+OPS=$OPS }${BACKENDS:+BACKENDS=$BACKENDS }${REPEAT:+REPEAT=$REPEAT }${COMPARE:+COMPARE=$COMPARE }${COMPARE_PYTHON:+COMPARE_PYTHON=$COMPARE_PYTHON }${COMPARE_LABEL:+COMPARE_LABEL=$COMPARE_LABEL }${OP_TIMEOUT:+OP_TIMEOUT=$OP_TIMEOUT }benches/orm/run.sh"

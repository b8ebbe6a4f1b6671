#!/usr/bin/env bash
# Multi-process benchmark: 1, 2 and 4 processes on one store, the djongo-rs embedded store
# against Django's sqlite3 backend in WAL mode, same workload, same run. Writes results.md,
# results.json and results.png here.
#   benches/multiprocess/run.sh                    # 300 operations per process, 3 runs per point
#   OPS=1000 REPEAT=5 benches/multiprocess/run.sh  # longer
# Uses its own venv under .cache/ (git-ignored) with a release build of the extension and the
# [bench] extras (matplotlib); never touches the dev .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/benches/multiprocess"
VENV="$ROOT/.cache/multiprocess-bench-venv"
WHEELS="$ROOT/.cache/multiprocess-bench-wheels"
PYTHON="${PYTHON:-python3}"
OPS="${OPS:-300}"
REPEAT="${REPEAT:-3}"
cd "$ROOT"

echo "== venv and release build of the extension"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
fi
if [ -x "$ROOT/.venv/bin/maturin" ]; then
    MATURIN="$ROOT/.venv/bin/maturin"
else
    "$VENV/bin/pip" install --quiet "maturin>=1.7,<2"
    MATURIN="$VENV/bin/maturin"
fi
rm -rf "$WHEELS"
"$MATURIN" build --release --interpreter "$VENV/bin/python" -o "$WHEELS"
WHEEL="$(ls "$WHEELS"/djongo_rs-*.whl)"
"$VENV/bin/pip" install --quiet "$WHEEL[bench]"
"$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$WHEEL"

echo "== benchmark ($OPS operations per process, $REPEAT runs per point)"
"$VENV/bin/python" "$HERE/bench.py" --out "$HERE" --ops "$OPS" --repeat "$REPEAT" \
    --command "OPS=$OPS REPEAT=$REPEAT benches/multiprocess/run.sh"

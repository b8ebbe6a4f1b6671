#!/usr/bin/env bash
# Operation benchmark: djongo-server against FerretDB 1.24 (SQLite backend), same machine,
# same run, same data; writes benches/engine/results.md and results.png.
#   benches/engine/run.sh                    # release build, 5000 documents (~5 minutes)
#   DOCS=20000 SCALE=2 benches/engine/run.sh # more data, more repetitions
# Needs cargo, Go (for scripts/ferretdb-setup, first time only) and Python 3.11+.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/benches/engine"
DOCS="${DOCS:-5000}"
SCALE="${SCALE:-1}"
cd "$ROOT"

echo "== djongo-server (release build)"
cargo build --release -p djongo-server
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
OURS="$TARGET_DIR/release/djongo-server"

echo "== FerretDB v1.24.2"
FERRETDB="$(scripts/ferretdb-setup | tail -n 1)"

echo "== Python with pymongo"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    scripts/setup
fi
PY="$ROOT/.venv/bin/python"
"$PY" -c 'import pymongo' 2>/dev/null || "$PY" -m pip install --quiet "pymongo>=4.6"
"$PY" -c 'import matplotlib' 2>/dev/null || "$PY" -m pip install --quiet "matplotlib>=3.8"

echo "== benchmark ($DOCS documents, scale $SCALE)"
"$PY" "$HERE/bench.py" --ours "$OURS" --ferretdb "$FERRETDB" --out "$HERE/results.md" \
    --docs "$DOCS" --scale "$SCALE" \
    --command "DOCS=$DOCS SCALE=$SCALE benches/engine/run.sh"

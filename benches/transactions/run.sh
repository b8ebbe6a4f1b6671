#!/usr/bin/env bash
# Concurrent writers through Django: djongo-server before per-document
# transactions (OLD_REF) vs this tree vs Django's sqlite3 backend, same run;
# writes benches/transactions/results.md and results.png.
#   benches/transactions/run.sh                       # ~8 minutes after the builds
#   OLD_REF=48e5a7b DURATION=5 ROUNDS=3 benches/transactions/run.sh
# The old engine is built from `git archive OLD_REF` in a temporary directory
# (no checkout is touched); both builds share BENCH_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/benches/transactions"
OLD_REF="${OLD_REF:-48e5a7b}"
DURATION="${DURATION:-4}"
ROUNDS="${ROUNDS:-3}"
BENCH_TARGET_DIR="${BENCH_TARGET_DIR:-${TMPDIR:-/tmp}/djongo-bench-target}"
cd "$ROOT"

OLD_SRC="$(mktemp -d)"
trap 'rm -rf "$OLD_SRC"' EXIT
echo "== djongo-server at $OLD_REF (release build)"
git archive "$OLD_REF" | tar -x -C "$OLD_SRC"
(cd "$OLD_SRC" && CARGO_TARGET_DIR="$BENCH_TARGET_DIR" cargo build --release -p djongo-server)
OLD="$BENCH_TARGET_DIR/old-djongo-server"
cp "$BENCH_TARGET_DIR/release/djongo-server" "$OLD"

echo "== djongo-server from this tree (release build)"
CARGO_TARGET_DIR="$BENCH_TARGET_DIR" cargo build --release -p djongo-server
NEW="$BENCH_TARGET_DIR/release/djongo-server"

echo "== Python with Django, djongo and matplotlib"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    scripts/setup
fi
PY="$ROOT/.venv/bin/python"
"$PY" -c 'import matplotlib' 2>/dev/null || "$PY" -m pip install --quiet "matplotlib>=3.8"

echo "== benchmark"
"$PY" "$HERE/bench.py" --old "$OLD" --new "$NEW" --old-ref "$OLD_REF" --out-dir "$HERE" \
    --duration "$DURATION" --rounds "$ROUNDS" \
    --command "OLD_REF=$OLD_REF DURATION=$DURATION ROUNDS=$ROUNDS benches/transactions/run.sh"

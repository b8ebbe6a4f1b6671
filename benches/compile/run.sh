#!/usr/bin/env bash
# One command for the compile-time benchmark: djongo-rs (Rust and Python) vs Djongo 1.3.7.
#   benches/compile/run.sh            # everything; writes benches/compile/results.md
#   SAMPLES=50 CRITERION=0 benches/compile/run.sh   # quicker, no criterion run
# Uses its own venvs under .cache/ (git-ignored); never touches the dev .venv.
# Writes results.md, results.png and the raw results-*.json (to redraw without a rerun:
#   python benches/compile/bench.py report results-djongo-rs.json results-djongo137.json --plot results.png).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/benches/compile"
CACHE="$ROOT/.cache/compile-bench"
RS_VENV="$ROOT/.cache/djongo-rs-bench-venv"
PEER_VENV="$ROOT/.cache/djongo-peer-venv"
PYTHON="${PYTHON:-python3}"
SAMPLES="${SAMPLES:-200}"
SAMPLE_MS="${SAMPLE_MS:-2}"
CRITERION="${CRITERION:-1}"
mkdir -p "$CACHE"
cd "$ROOT"

echo "== peer venv (Djongo 1.3.7)"
PYTHON="$PYTHON" "$HERE/setup_peer.sh"

echo "== djongo-rs venv and release build of the extension"
if [ ! -x "$RS_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$RS_VENV"
    "$RS_VENV/bin/pip" install --quiet --upgrade pip
fi
if [ -x "$ROOT/.venv/bin/maturin" ]; then
    MATURIN="$ROOT/.venv/bin/maturin"
else
    "$RS_VENV/bin/pip" install --quiet "maturin>=1.7,<2"
    MATURIN="$RS_VENV/bin/maturin"
fi
rm -rf "$CACHE/wheels"
"$MATURIN" build --release --interpreter "$RS_VENV/bin/python" -o "$CACHE/wheels"
# Dependencies (Django 5.2, pymongo) once; the wheel itself every time.
"$RS_VENV/bin/pip" install --quiet "$CACHE"/wheels/djongo_rs-*.whl
"$RS_VENV/bin/pip" install --quiet --force-reinstall --no-deps "$CACHE"/wheels/djongo_rs-*.whl

CRIT_DIR=""
if [ "$CRITERION" = "1" ]; then
    echo "== criterion (Rust only)"
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    cargo bench -p djongo-sql --bench compile -- --warm-up-time 1 --measurement-time 3 --noplot
    CRIT_DIR="$TARGET_DIR/criterion"
fi

echo "== djongo-rs from Python"
# Run outside the checkout so that `import djongo` is the installed wheel, not python/.
(cd "$CACHE" && "$RS_VENV/bin/python" "$HERE/bench.py" rs "$CACHE/rs.json" \
    --samples "$SAMPLES" --sample-ms "$SAMPLE_MS")
echo "== Djongo 1.3.7 translator"
(cd "$CACHE" && "$PEER_VENV/bin/python" "$HERE/bench.py" peer "$CACHE/peer.json" \
    --samples "$SAMPLES" --sample-ms "$SAMPLE_MS")

"$RS_VENV/bin/pip" install --quiet "matplotlib>=3.8"
"$RS_VENV/bin/python" "$HERE/bench.py" report "$CACHE/rs.json" "$CACHE/peer.json" $CRIT_DIR \
    --plot "$HERE/results.png" > "$HERE/results.md"
cp "$CACHE/rs.json" "$HERE/results-djongo-rs.json"
cp "$CACHE/peer.json" "$HERE/results-djongo137.json"
echo "wrote $HERE/results.md"

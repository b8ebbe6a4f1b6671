#!/usr/bin/env bash
# Create the peer's virtualenv: the original Djongo 1.3.7 from PyPI with the pins it
# declares (Django<=3.1, pymongo<=3.11, sqlparse==0.2.4). Idempotent.
# Usage: benches/compile/setup_peer.sh   (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="$ROOT/.cache/djongo-peer-venv"
PYTHON="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import djongo.base" 2>/dev/null; then
    echo "peer venv ready: $VENV"
    exit 0
fi
mkdir -p "$ROOT/.cache"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# pip resolves djongo's own pins; nothing else is installed.
"$VENV/bin/pip" install --quiet "djongo==1.3.7"
"$VENV/bin/pip" freeze > "$VENV/freeze.txt"
echo "peer venv created: $VENV"
cat "$VENV/freeze.txt"

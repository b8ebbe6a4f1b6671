#!/usr/bin/env bash
# ODM benchmark (issue 18): MongoDB's ODM Performance Benchmarking specification, with the
# tasks, models and datasets of django-mongodb-backend's performance_tests/, run for djongo
# and for django-mongodb-backend (PyPI, 5.2 series) against ONE djongo-server (release
# build) that this script's driver starts; writes benches/odm/results.{md,json,png}.
#
#   benches/odm/run.sh                 # the spec's sizes and timing: N = 10,000 operations per
#                                      # iteration, >= 30 s and 10 iterations (or 60 s) per task
#                                      # (hours: the nested finds scan N documents N times)
#   QUICK=1 benches/odm/run.sh         # django-mongodb-backend's FASTBENCH sizes (N = 1,000)
#                                      # with >= 5 s and 10 iterations (or 15 s) per task
#   DOCS=N LARGE_DOCS=N MIN_TIME=S MIN_ITERATIONS=K MAX_TIME=S   override any of these
#   CLIENT_COLUMN=1                    # also djongo through CLIENT (pymongo) to the same server
#   TASKS="SmallFlatDocCreation ..."   # only these tasks
#   ROUNDS=K                           # each task K times per backend, the backends taking
#                                      # turns; the rounds' iterations pooled (default 1)
#   ODM_DATA=DIR                       # the extracted odm-data (flat-models/, nested-models/) or
#                                      # the two tarballs; default: .cache/odm-data, fetched with
#                                      # a shallow git clone of mongodb/specifications
#
# django-mongodb-backend gets its own virtualenv, .cache/odm-official-venv (it pins its own
# Django and pymongo); nothing of it goes into the project's .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/benches/odm"
cd "$ROOT"

scripts/setup --release
PY="$ROOT/.venv/bin/python"
"$PY" -c 'import matplotlib' 2>/dev/null || "$PY" -m pip install --quiet "matplotlib>=3.8"
cargo build --quiet --release -p djongo-server --bin djongo-server
SERVER="$ROOT/target/release/djongo-server"

OFFICIAL_VENV="$ROOT/.cache/odm-official-venv"
OFFICIAL_SPEC="django-mongodb-backend>=5.2,<5.3"
if ! "$OFFICIAL_VENV/bin/python" -c 'import django_mongodb_backend' 2>/dev/null; then
    echo "odm: creating $OFFICIAL_VENV with $OFFICIAL_SPEC"
    rm -rf "$OFFICIAL_VENV"
    mkdir -p "$ROOT/.cache"
    "$(readlink -f "$ROOT/.venv/bin/python")" -m venv "$OFFICIAL_VENV"
    "$OFFICIAL_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$OFFICIAL_SPEC"
fi

DATA="${ODM_DATA:-$ROOT/.cache/odm-data}"
if [ ! -f "$DATA/flat-models/small_doc.json" ]; then
    if [ ! -f "$DATA/flat_models.tgz" ]; then
        echo "odm: fetching the datasets (mongodb/specifications, source/benchmarking/odm-data)"
        tmp="$(mktemp -d)"
        git clone --quiet --depth 1 --filter=blob:none --sparse \
            https://github.com/mongodb/specifications.git "$tmp/specifications"
        git -C "$tmp/specifications" sparse-checkout set source/benchmarking/odm-data
        mkdir -p "$DATA"
        cp "$tmp/specifications/source/benchmarking/odm-data/"*.tgz "$DATA/"
        rm -rf "$tmp"
    fi
    (cd "$DATA" && tar xzf flat_models.tgz 2>/dev/null && tar xzf nested_models.tgz 2>/dev/null)
fi

# The command as given, before QUICK fills in its defaults.
COMMAND="benches/odm/run.sh"
for v in QUICK DOCS LARGE_DOCS MIN_TIME MIN_ITERATIONS MAX_TIME CLIENT_COLUMN TASKS ROUNDS; do
    if [ -n "${!v:-}" ]; then COMMAND="$v=\"${!v}\" $COMMAND"; fi
done
if [ "${QUICK:-0}" = 1 ]; then
    : "${DOCS:=1000}" "${LARGE_DOCS:=1000}" "${MIN_TIME:=5}" "${MIN_ITERATIONS:=10}" "${MAX_TIME:=15}"
fi
ARGS=(--docs "${DOCS:-10000}" --large-docs "${LARGE_DOCS:-10000}" --min-time "${MIN_TIME:-30}"
      --min-iterations "${MIN_ITERATIONS:-10}" --max-time "${MAX_TIME:-60}"
      --rounds "${ROUNDS:-1}")
BACKENDS=(--backend "djongo=$PY" --backend "official=$OFFICIAL_VENV/bin/python")
if [ "${CLIENT_COLUMN:-0}" = 1 ]; then
    BACKENDS=(--backend "djongo=$PY" --backend "djongo-client=$PY"
              --backend "official=$OFFICIAL_VENV/bin/python")
fi
TASK_ARGS=()
for t in ${TASKS:-}; do TASK_ARGS+=(--task "$t"); done

exec "$PY" "$HERE/bench.py" run --server "$SERVER" --data "$DATA" "${ARGS[@]}" \
    "${BACKENDS[@]}" "${TASK_ARGS[@]}" --out "$HERE" --command "$COMMAND"

"""Compile-time benchmark: djongo-rs's SQL compiler vs the original Djongo's translator.

Three sub-commands, each run by ``run.sh`` in the right virtualenv:

``bench.py rs OUT.json``
    djongo-rs, from Python: ``djongo._core.compile_uncached(sql)`` (a miss: the whole
    compile plus conversion of the plan to Python objects) and ``djongo._core.compile(sql)``
    after a warm-up (a hit in the binding layer's plan cache).
``bench.py peer OUT.json``  (in the Djongo 1.3.7 venv)
    Djongo 1.3.7's translation step: ``Query(client, db, props, sql, params)`` (it parses
    in ``__init__``) plus, for a SELECT, building the MongoDB command (``_get_cursor``,
    which Djongo only does when the rows are iterated). The database is a no-op stub:
    no server; the DML ``execute()`` methods (which only send the command, and for
    INSERT allocate ids and build documents) are not called.
``bench.py report RS.json PEER.json [CRITERION_DIR] > results.md``
    The Markdown table.

Timing: ``timeit`` (GC off while timing), each sample a batch of calls lasting at least
``--sample-ms``; the per-call time of each sample is kept, and the median and p90 over
``--samples`` samples are reported, in microseconds. A benchmark, not a test: nothing
asserts on time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from machine import cpu_model  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
STATEMENTS = HERE / "statements.sql"  # Django 5.2 through djongo-rs's backend
PEER_STATEMENTS = HERE / "statements_djongo137.sql"  # Django 3.1 through Djongo 1.3.7's


def load_statements(path: pathlib.Path) -> dict[str, tuple[str, list]]:
    """``name -> (sql, params)`` from a ``-- name:`` / ``-- params:`` / SQL file."""
    out: dict[str, tuple[str, list]] = {}
    name = None
    params: list = []
    for line in path.read_text().splitlines():
        if line.startswith("-- name: "):
            name = line[len("-- name: "):].strip()
            params = []
            out[name] = ("", params)
        elif line.startswith("-- params: "):
            params = json.loads(line[len("-- params: "):])
            assert name is not None
            out[name] = (out[name][0], params)
        elif line.startswith("--") or not line.strip():
            continue
        else:
            assert name is not None, "SQL before the first -- name: line"
            sql = out[name][0]
            out[name] = ((sql + "\n" + line) if sql else line, out[name][1])
    return out


def measure(fn: Callable[[], object], samples: int, sample_ms: float) -> dict[str, float]:
    """Median and p90 of the per-call time in µs, over ``samples`` batches."""
    timer = timeit.Timer(fn)
    number = 1
    while True:  # calibrate: a batch lasts at least sample_ms
        if timer.timeit(number) * 1000 >= sample_ms or number >= 1 << 20:
            break
        number *= 2
    per_call = sorted(t / number * 1e6 for t in timer.repeat(repeat=samples, number=number))
    p90 = per_call[min(len(per_call) - 1, int(round(0.9 * (len(per_call) - 1))))]
    return {
        "median_us": statistics.median(per_call),
        "p90_us": p90,
        "min_us": per_call[0],
        "calls_per_sample": number,
        "samples": samples,
    }


def first_line(exc: BaseException) -> str:
    """A one-line description of an exception: its type and first message line."""
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0][:160] if text else "")


# --------------------------------------------------------------------------------------
# djongo-rs


def bench_rs(args: argparse.Namespace) -> dict:
    from djongo import _core

    load_before = os.getloadavg()
    results = {}
    for name, (sql, _params) in load_statements(STATEMENTS).items():
        entry: dict = {"sql_chars": len(sql)}
        try:
            _core.compile_uncached(sql)
        except Exception as exc:  # a compile error is a finding, not a crash
            entry["error"] = first_line(exc)
            results[name] = entry
            continue
        entry["miss"] = measure(lambda sql=sql: _core.compile_uncached(sql),
                                args.samples, args.sample_ms)
        _core.compile(sql)  # warm the cache
        entry["hit"] = measure(lambda sql=sql: _core.compile(sql), args.samples, args.sample_ms)
        results[name] = entry
        print("rs   %-26s miss %8.2f µs  hit %6.3f µs" % (
            name, entry["miss"]["median_us"], entry["hit"]["median_us"]), file=sys.stderr)
    return {"impl": "djongo-rs", "python": sys.version.split()[0], "statements": results,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


# --------------------------------------------------------------------------------------
# Djongo 1.3.7 (run in its own venv: its package is also called ``djongo``)


class _NullCollection:
    """A pymongo Collection stand-in: every method accepts anything and returns None."""

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return _noop


def _noop(*_args: object, **_kwargs: object) -> None:
    return None


class _NullDatabase:
    """A pymongo Database stand-in for Djongo's parser: no server, no work."""

    def __init__(self) -> None:
        self._collection = _NullCollection()

    def __getitem__(self, _name: str) -> _NullCollection:
        return self._collection

    def __getattr__(self, _name: str) -> Callable[..., None]:
        return _noop

    def list_collection_names(self) -> list[str]:
        return []


def describe_peer_error(exc: BaseException) -> str:
    """Djongo's errors say little (``SQLDecodeError`` prints ``Keyword: None``): name the
    exception, the original one it wraps, the innermost Djongo frame that raised it and
    the SQL token that frame was looking at."""
    origin = exc.__cause__ or exc.__context__ or exc
    names = [type(exc).__name__]
    if origin is not exc:
        names.append(first_line(origin))
    text = " ← ".join(names)
    frames = [f for f in _walk_tb(origin.__traceback__) if "djongo" in f.f_code.co_filename]
    if frames:
        frame = frames[-1]
        text += " at %s:%s" % (pathlib.Path(frame.f_code.co_filename).name, frame.f_code.co_name)
        for local in ("tok", "token"):
            value = frame.f_locals.get(local)
            if value is not None and not isinstance(value, (list, tuple)):
                tok = str(getattr(value, "_token", value))
                text += " on %s %r" % (local, tok if len(tok) < 60 else tok[:57] + "...")
                break
    return text


def _walk_tb(tb):  # noqa: ANN001, ANN202 - a traceback walk
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def bench_peer(args: argparse.Namespace) -> dict:
    import djongo
    import djongo.base  # import order: djongo.sql2mongo.query imports djongo.base
    from djongo.base import DjongoClient
    from djongo.sql2mongo import query as q

    # Translation only: the DML handlers call execute() right after parsing; it only
    # sends the built command (INSERT: allocates ids and builds the documents).
    for cls in (q.InsertQuery, q.UpdateQuery, q.DeleteQuery):
        cls.execute = lambda self: None

    db = _NullDatabase()
    load_before = os.getloadavg()

    def translate(sql: str, params: list) -> object:
        props = DjongoClient(db, enforce_schema=False)
        query = q.Query(None, db, props, sql, params)
        if isinstance(query._query, q.SelectQuery):
            query._query._get_cursor()  # build the find/aggregate command
        return query

    def attempt(sql: str, params: list) -> dict:
        try:
            translate(sql, params)
        except Exception as exc:
            return {"error": describe_peer_error(exc)}
        return {"time": measure(lambda: translate(sql, params), args.samples, args.sample_ms)}

    same = load_statements(STATEMENTS)
    own = load_statements(PEER_STATEMENTS)
    results = {}
    for name, (sql, params) in same.items():
        entry = {"same_sql": attempt(sql, params)}
        if name in own:
            entry["own_dialect"] = attempt(*own[name])
        results[name] = entry
        print("peer %-26s same: %s  own: %s" % (
            name, _short(entry["same_sql"]), _short(entry.get("own_dialect", {}))),
            file=sys.stderr)
    return {"impl": "djongo %s" % djongo.__version__, "python": sys.version.split()[0],
            "statements": results,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def _short(entry: dict) -> str:
    if "time" in entry:
        return "%.1f µs" % entry["time"]["median_us"]
    return "fails (%s)" % entry.get("error", "?")


# --------------------------------------------------------------------------------------
# report


def _fmt(stat: dict | None, digits: int = 1) -> str:
    if not stat:
        return "–"
    return "%.*f (p90 %.*f)" % (digits, stat["median_us"], digits, stat["p90_us"])


def _criterion(directory: pathlib.Path | None, name: str) -> float | None:
    """Median (µs) of criterion's ``compile/<name>`` estimate, if it was run."""
    if directory is None:
        return None
    path = directory / "compile" / name / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"] / 1000.0


def _machine() -> list[str]:
    cpu = cpu_model("?")
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                               check=False).stdout.strip()
    except OSError:
        rustc = "?"
    return [
        "- date: %s" % datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "- nproc: %s; CPU: %s" % (os.cpu_count(), cpu),
        "- OS: %s %s" % (platform.system(), platform.release()),
        "- rustc: %s" % rustc,
    ]


def _fail_text(entry: dict) -> str:
    text = entry.get("error", "?")
    return "fails: `%s`" % text.replace("|", "\\|").replace("`", "'")


def report(rs: dict, peer: dict, criterion_dir: pathlib.Path | None,
           plot_path: pathlib.Path | None = None) -> str:
    lines = [
        "# Compile time: djongo-rs vs Djongo 1.3.7's SQL translator",
        "",
        "Generated by `benches/compile/run.sh`; numbers are per statement, in microseconds",
        "(median, p90 in brackets, over %s samples)."
        % next(iter(e["miss"]["samples"] for e in rs["statements"].values() if "miss" in e)),
        "",
        "- **djongo-rs miss**: `djongo._core.compile_uncached(sql)` from Python %s: parse, plan,"
        " lower, and convert the plan to Python objects." % rs["python"],
        "- **djongo-rs hit**: `djongo._core.compile(sql)` after a warm-up: the binding layer's"
        " plan cache, which is what every execution of an already seen statement pays.",
        "- **Rust only**: `cargo bench -p djongo-sql --bench compile` (criterion median; no"
        " Python conversion).",
        "- **Djongo**: %s (Django 3.1.12, sqlparse 0.2.4, pymongo 3.11.4, Python %s) translating"
        " the same SQL text: `Query(...)` (sqlparse + its converters) and, for a SELECT,"
        " building the find/aggregate command; no server (a no-op stub database), the DML"
        " `execute()` not called. Djongo binds the parameters while it translates, so it"
        " cannot cache: it pays this on every execution." % (peer["impl"], peer["python"]),
        "- **Djongo, own dialect**: the same querysets as Django 3.1 writes them through"
        " Djongo's own backend (`statements_djongo137.sql`), for the statements whose"
        " Django 5.2 text it cannot translate.",
        "- **ratio** = Djongo ÷ djongo-rs miss (Djongo's time on the same SQL, else on its own"
        " dialect, marked †); **ratio vs hit** = the same Djongo time ÷ djongo-rs hit.",
        "",
        "| statement | SQL chars | Rust only | djongo-rs miss | djongo-rs hit |"
        " Djongo 1.3.7 (same SQL) | Djongo 1.3.7 (own dialect) | ratio | ratio vs hit |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |",
    ]
    for name, rs_entry in rs["statements"].items():
        p = peer["statements"].get(name, {})
        same, own = p.get("same_sql", {}), p.get("own_dialect", {})
        crit = _criterion(criterion_dir, name)
        if "error" in rs_entry:
            miss_s = hit_s = "fails: `%s`" % rs_entry["error"]
            miss = hit = None
        else:
            miss, hit = rs_entry["miss"]["median_us"], rs_entry["hit"]["median_us"]
            miss_s, hit_s = _fmt(rs_entry["miss"]), _fmt(rs_entry["hit"], 3)
        same_s = _fmt(same["time"]) if "time" in same else _fail_text(same)
        own_s = _fmt(own["time"]) if "time" in own else (_fail_text(own) if own else "–")
        peer_t, mark = None, ""
        if "time" in same:
            peer_t = same["time"]["median_us"]
        elif "time" in own:
            peer_t, mark = own["time"]["median_us"], "†"
        ratio = "%.0f×%s" % (peer_t / miss, mark) if peer_t and miss else "–"
        ratio_hit = "%.0f×%s" % (peer_t / hit, mark) if peer_t and hit else "–"
        lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            name, rs_entry["sql_chars"], "%.1f" % crit if crit is not None else "–",
            miss_s, hit_s, same_s, own_s, ratio, ratio_hit))
    names = list(rs["statements"])
    same_fail = [n for n in names
                 if "time" not in peer["statements"].get(n, {}).get("same_sql", {})]
    own_fail = [n for n in names
                if "time" not in peer["statements"].get(n, {}).get("own_dialect", {})]
    rs_fail = [n for n, e in rs["statements"].items() if "error" in e]
    lines += [
        "",
        "Djongo 1.3.7 cannot translate %d of %d statements as Django 5.2 writes them (%s),"
        " and %d even in its own Django 3.1 dialect (%s). djongo-rs fails on %d%s." % (
            len(same_fail), len(names), ", ".join(same_fail) or "none",
            len(own_fail), ", ".join(own_fail) or "none",
            len(rs_fail), (" (%s)" % ", ".join(rs_fail)) if rs_fail else ""),
    ]
    if plot_path:
        lines += ["", "![compile time per statement](%s)" % plot_path.name]
    lines += ["", "## Machine", ""] + _machine() + [
        "- djongo-rs: release build of `crates/python` (maturin), Python %s" % rs["python"],
        "- load average (1, 5, 15 min) before/after: djongo-rs run %s / %s; Djongo run %s / %s"
        " (other work on a shared 2-core machine inflates absolute times; the ratios are"
        " more stable)" % tuple(
            "%.1f, %.1f, %.1f" % tuple(run.get(key, (0, 0, 0)))
            for run in (rs, peer) for key in ("loadavg_before", "loadavg_after")),
        "",
    ]
    return "\n".join(lines)


def plot(rs: dict, peer: dict, path: pathlib.Path) -> None:
    """Per statement, on a log scale: djongo-rs (cache miss and hit) and Djongo 1.3.7."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rs["statements"])
    series: dict[str, list[float | None]] = {
        "djongo-rs, cache miss": [], "djongo-rs, cache hit": [], "Djongo 1.3.7": []}
    dialect_marks = []
    for name in names:
        entry = rs["statements"][name]
        series["djongo-rs, cache miss"].append(entry.get("miss", {}).get("median_us"))
        series["djongo-rs, cache hit"].append(entry.get("hit", {}).get("median_us"))
        p = peer["statements"].get(name, {})
        same, own = p.get("same_sql", {}), p.get("own_dialect", {})
        if "time" in same:
            series["Djongo 1.3.7"].append(same["time"]["median_us"])
            dialect_marks.append("")
        elif "time" in own:
            series["Djongo 1.3.7"].append(own["time"]["median_us"])
            dialect_marks.append("†")
        else:
            series["Djongo 1.3.7"].append(None)
            dialect_marks.append("fails")
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(names) + 1.5))
    height = 0.27
    colors = {"djongo-rs, cache miss": "#4f81bd", "djongo-rs, cache hit": "#9bbb59",
              "Djongo 1.3.7": "#c0504d"}
    for i, (label, values) in enumerate(series.items()):
        ys = [n + (i - 1) * height for n in range(len(names))]
        ax.barh([y for y, v in zip(ys, values, strict=True) if v],
                [v for v in values if v], height, label=label, color=colors[label])
        if label == "Djongo 1.3.7":
            for y, v, mark in zip(ys, values, dialect_marks, strict=True):
                if mark == "fails":
                    ax.text(0.025, y, "Djongo cannot translate it", va="center", fontsize=7,
                            color=colors[label])
                elif mark:
                    ax.text(v * 1.1, y, "† own dialect", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(left=0.02, right=1e6)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("µs per statement (median, log scale)")
    ax.set_title("Compiling the SQL Django 5.2 writes: djongo-rs vs Djongo 1.3.7", fontsize=10,
                 pad=28)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("rs", "peer"):
        p = sub.add_parser(cmd)
        p.add_argument("out", type=pathlib.Path)
        p.add_argument("--samples", type=int, default=200)
        p.add_argument("--sample-ms", type=float, default=2.0)
    p = sub.add_parser("report")
    p.add_argument("rs", type=pathlib.Path)
    p.add_argument("peer", type=pathlib.Path)
    p.add_argument("criterion_dir", type=pathlib.Path, nargs="?")
    p.add_argument("--plot", type=pathlib.Path, help="also draw the results as this PNG")
    args = parser.parse_args()
    if args.cmd == "report":
        rs, peer = json.loads(args.rs.read_text()), json.loads(args.peer.read_text())
        print(report(rs, peer, args.criterion_dir, args.plot))
        if args.plot:
            plot(rs, peer, args.plot)
        return
    data = bench_rs(args) if args.cmd == "rs" else bench_peer(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()

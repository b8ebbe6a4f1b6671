"""The ODM benchmark's pooling of rounds (benches/odm/bench.py, ``ROUNDS=K``): the score of a
task run several times per backend is the median of all its rounds' iterations."""

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "benches" / "odm" / "bench.py"
_spec = importlib.util.spec_from_file_location("odm_bench", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _round(times, client_cpu, server_cpu, wall=1.0):
    pct = bench.percentiles(times)
    return {"times": times, "iterations": len(times), "median": pct["p50"], "percentiles": pct,
            "data_size": 1_000_000, "ops": 10, "mb_per_s": 1_000_000 / pct["p50"] / 1e6,
            "client_cpu": client_cpu, "server_cpu": server_cpu, "wall": wall}


def test_rounds_are_pooled_into_one_median_and_weighted_cpu():
    slow = _round([4.0, 5.0, 6.0], client_cpu=0.3, server_cpu=0.6)
    fast = _round([1.0], client_cpu=0.1, server_cpu=None)
    both = bench.pooled([slow, _round([1.0, 2.0, 3.0], 0.1, 0.2, wall=2.0)])
    assert both["times"] == [4.0, 5.0, 6.0, 1.0, 2.0, 3.0]
    assert both["iterations"] == 6 and both["rounds"] == 2
    assert both["median"] == bench.percentiles(both["times"])["p50"]
    assert both["mb_per_s"] == 1_000_000 / both["median"] / 1e6
    assert abs(both["client_cpu"] - 0.2) < 1e-12 and abs(both["server_cpu"] - 0.4) < 1e-12
    assert both["wall"] == 3.0
    # A round without the server's CPU leaves the pooled server CPU unknown.
    assert bench.pooled([slow, fast])["server_cpu"] is None


def test_one_round_is_kept_and_a_failed_round_fails_the_task():
    one = _round([1.0, 2.0], 0.1, 0.2)
    assert bench.pooled([one]) is one
    failed = {"error": "timed out after 1800 s"}
    assert bench.pooled([one, failed]) == failed

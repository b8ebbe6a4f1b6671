"""A checker for histories of list-append transactions, after Elle
(Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from Experimental
Observations", VLDB 2020).

Each transaction reads keys (whole lists) and appends unique values to them.
Because every value is appended once and lists only grow, the final lists
give each key's version order, and every read names the version it saw. From
that the checker rebuilds the dependency graph between committed
transactions (write-write, write-read and read-write edges) and reports what
snapshot isolation forbids:

* ``G1a`` aborted read: a value written by an aborted transaction is seen;
* ``G1b`` intermediate read: a read ends between two appends of one
  transaction (part of another transaction seen);
* ``incompatible-order`` a read that is not a prefix of the key's final list
  (versions that cannot be ordered), and ``duplicate`` values;
* ``lost-write`` an acknowledged append missing from the final list;
* ``internal`` a transaction not seeing its own appends, or a key changing
  between two of its reads (not a snapshot);
* ``G0``/``G1c`` a cycle of write-write/write-read edges;
* ``G-single`` a cycle with exactly one read-write edge: lost updates and
  read skew (fractured reads) are of this kind.

Cycles with two or more read-write edges (write skew) are allowed by
snapshot isolation and not reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["ok", "fail", "info"]


@dataclass
class Op:
    kind: Literal["r", "a"]
    key: int
    # The value appended, or the list read.
    value: int | list[int] | None = None


@dataclass
class Txn:
    """One transaction: ``ok`` committed, ``fail`` certainly not committed,
    ``info`` unknown (its commit got no answer)."""

    id: int
    ops: list[Op] = field(default_factory=list)
    outcome: Outcome = "info"


@dataclass
class Anomaly:
    kind: str
    detail: str


def check(history: list[Txn], final: dict[int, list[int]]) -> list[Anomaly]:
    anomalies: list[Anomaly] = []
    writer: dict[int, Txn] = {}
    for txn in history:
        for op in txn.ops:
            if op.kind == "a":
                writer[op.value] = txn

    for key, values in final.items():
        if len(values) != len(set(values)):
            anomalies.append(Anomaly("duplicate", f"key {key}: {values}"))
        for v in values:
            if v not in writer:
                anomalies.append(Anomaly("garbage", f"key {key}: {v} was never appended"))

    def committed(txn: Txn) -> bool:
        if txn.outcome == "ok":
            return True
        if txn.outcome == "fail":
            return False
        appends = [op for op in txn.ops if op.kind == "a"]
        # An unknown outcome is settled by the data: its appends are all
        # there or none is (checked below).
        return not appends or appends[0].value in final.get(appends[0].key, [])

    position = {key: {v: i for i, v in enumerate(values)} for key, values in final.items()}
    for txn in history:
        appends = [op for op in txn.ops if op.kind == "a"]
        present = [op.value in position.get(op.key, {}) for op in appends]
        if txn.outcome == "ok" and not all(present):
            anomalies.append(Anomaly("lost-write", f"txn {txn.id} committed {appends}, "
                                                   "not all of them are in the final lists"))
        if txn.outcome == "fail" and any(present):
            anomalies.append(Anomaly("G1a", f"aborted txn {txn.id}'s append is in the final lists"))
        if txn.outcome == "info" and any(present) and not all(present):
            anomalies.append(Anomaly("partial", f"txn {txn.id} is only partly applied"))

    nodes = [t for t in history if committed(t)]
    edges: dict[str, set[tuple[int, int]]] = {"ww": set(), "wr": set(), "rw": set()}

    for txn in history:
        if txn.outcome == "fail":
            continue
        own: dict[int, list[int]] = defaultdict(list)
        first_read: dict[int, list[int]] = {}
        for op in txn.ops:
            if op.kind == "a":
                own[op.key].append(op.value)
                continue
            seen = list(op.value or [])
            mine = own[op.key]
            # Own appends come last in what the transaction reads.
            if mine and seen[-len(mine):] != mine:
                anomalies.append(Anomaly("internal", f"txn {txn.id} read {seen} from key {op.key} "
                                                     f"after appending {mine}"))
                continue
            external = seen[:len(seen) - len(mine)]
            if op.key in first_read and first_read[op.key] != external:
                anomalies.append(Anomaly("internal", f"txn {txn.id} read key {op.key} as "
                                                     f"{first_read[op.key]}, then {external}"))
            first_read.setdefault(op.key, external)
            for v in external:
                w = writer.get(v)
                if w is not None and w.outcome == "fail":
                    anomalies.append(Anomaly("G1a", f"txn {txn.id} read {v} from key {op.key}, "
                                                    f"written by aborted txn {w.id}"))
            values = final.get(op.key, [])
            if external != values[:len(external)]:
                anomalies.append(Anomaly("incompatible-order", f"txn {txn.id} read key {op.key} as "
                                                               f"{external}; final {values}"))
                continue
            if not committed(txn):
                continue
            if external:
                last = writer.get(external[-1])
                nxt = values[len(external)] if len(external) < len(values) else None
                if last is not None and nxt is not None and writer.get(nxt) is last:
                    anomalies.append(Anomaly("G1b", f"txn {txn.id} read key {op.key} as "
                                                    f"{external}, part of txn {last.id}'s appends"))
                if last is not None and last is not txn:
                    edges["wr"].add((last.id, txn.id))
            if len(external) < len(values):
                later = writer.get(values[len(external)])
                if later is not None and later is not txn:
                    edges["rw"].add((txn.id, later.id))

    for values in final.values():
        for a, b in zip(values, values[1:], strict=False):
            wa, wb = writer.get(a), writer.get(b)
            if wa is not None and wb is not None and wa is not wb:
                edges["ww"].add((wa.id, wb.id))

    anomalies += _cycles({t.id for t in nodes}, edges)
    return anomalies


def _cycles(nodes: set[int], edges: dict[str, set[tuple[int, int]]]) -> list[Anomaly]:
    """G0/G1c (a cycle of ww/wr edges) and G-single (one rw edge closing a
    ww/wr path)."""
    succ: dict[int, set[int]] = defaultdict(set)
    for kind in ("ww", "wr"):
        for a, b in edges[kind]:
            if a in nodes and b in nodes:
                succ[a].add(b)
    # Topological order of the ww/wr graph (Kahn); what is left is cyclic.
    indegree = dict.fromkeys(nodes, 0)
    for a in nodes:
        for b in succ[a]:
            indegree[b] += 1
    order = [n for n in nodes if indegree[n] == 0]
    for n in order:
        for b in succ[n]:
            indegree[b] -= 1
            if indegree[b] == 0:
                order.append(b)
    if len(order) < len(nodes):
        cyclic = sorted(n for n in nodes if indegree[n] > 0)
        return [Anomaly("G1c", f"a cycle of write-write/write-read edges among txns {cyclic[:20]}")]
    # What each transaction reaches over ww/wr edges, as a bit set.
    index = {n: i for i, n in enumerate(order)}
    reach = dict.fromkeys(nodes, 0)
    for n in reversed(order):
        bits = 0
        for b in succ[n]:
            bits |= reach[b] | (1 << index[b])
        reach[n] = bits
    found = []
    for a, b in sorted(edges["rw"]):
        if a in nodes and b in nodes and reach[b] >> index[a] & 1:
            found.append(Anomaly("G-single", f"txn {a} did not see txn {b}'s write, "
                                             f"yet depends on it through other transactions"))
    return found

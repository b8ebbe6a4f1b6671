"""Differential tests: our embedded engine against FerretDB 1.24 (SQLite backend).

Both servers get the same randomly generated documents; random queries, updates and
aggregation pipelines drawn from the grammar below run on both, and the results must be
identical: same documents, same BSON types (int32/int64/double/...), same order where the
query fixes a total order (every sort ends with _id), compared as multisets otherwise.

Everything is derived from one seed (DJONGO_DIFFERENTIAL_SEED, default BASE_SEED; the word
"random" picks one and prints it). Each case also has its own seed, printed on mismatch with
the documents involved and the query, so a failure reproduces from the message alone.

The grammar only produces forms FerretDB 1.24 implements and implements as MongoDB
documents them; EXCLUDED_FORMS lists what was left out and why.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import random

import pytest
from bson import Binary, Int64
from bson.regex import Regex
from pymongo.errors import OperationFailure

BASE_SEED = 20240611
DB_NAME = "djongo_differential"
N_DOCS = 300

# Cases per kind, multiplied by DJONGO_DIFFERENTIAL_SCALE (default 1) for longer runs:
# DJONGO_DIFFERENTIAL=1 DJONGO_DIFFERENTIAL_SCALE=20 pytest tests/differential
SCALE = max(1, int(os.environ.get("DJONGO_DIFFERENTIAL_SCALE", "1") or 1))
N_FIND = 150 * SCALE        # filters alone (order-insensitive)
N_SORTED = 60 * SCALE       # filter + sort (with _id tiebreak) + skip + limit + projection
N_UPDATE = 50 * SCALE       # update_many on a fresh copy of a slice of the collection
N_AGGREGATE = 60 * SCALE    # pipelines

# Forms the grammar deliberately does not generate, and why. Each was either rejected by
# FerretDB 1.24 or found by this test to differ from MongoDB's documented behaviour with our
# engine on MongoDB's side (FerretDB's own issue numbers where it has one).
EXCLUDED_FORMS = {
    # --- not implemented in FerretDB 1.24 (error 238 NotImplemented, or no such operator) ---
    "stages other than $match/$project/$group/$sort/$skip/$limit/$unwind/$count/"
    "$addFields/$set/$unset (e.g. $lookup, $facet, $replaceRoot)": "not implemented; "
    "test_stages_ferretdb_lacks checks the list in STAGES_FERRETDB_LACKS and cross-checks "
    "$bucket, $setWindowFields, $sortByCount and $sample against equivalent queries FerretDB "
    "does answer",
    "$group accumulators other than $sum and $count ($avg, $min, $max, $push, ...)":
        "not implemented",
    "aggregation expressions other than $sum and $type": "not implemented",
    "$unwind with a document argument ({path, preserveNullAndEmptyArrays})":
        "not implemented (only the string form)",
    "$elemMatch containing $ne": "not implemented",
    "$expr, $where, $text, geo operators": "not implemented",
    # --- FerretDB's documented differences (its 'Known differences' page for v1.24) ---
    "nested arrays; -0.0; NaN/Infinity; NUL in strings": "documented FerretDB differences",
    # --- FerretDB 1.24 deviates from MongoDB (found here; ours follows MongoDB) ---
    "$elemMatch with two or more operators on scalars ({$gte: 4, $lt: 4})":
        "FerretDB lets different elements satisfy different operators; MongoDB needs one "
        "element to satisfy all (FerretDB#1989)",
    "$elemMatch on arrays of subdocuments ({subs: {$elemMatch: {k: 1, v: 'fig'}}})":
        "FerretDB errors 'unknown operator: k' with two fields (FerretDB#2964) and matches "
        "nothing with one (FerretDB#2262)",
    "null, $ne, $nin, $all, $not and two-sided ranges on a dotted path through an array of "
    "subdocuments (subs.k, subs.v)":
        "FerretDB does not match {subs.v: null} when an element lacks v (FerretDB#2967); "
        "$ne/$nin/$not match documents where some element equals (FerretDB#2291); $all with "
        "several values and {$gte: x, $lte: y} satisfied by different elements match "
        "nothing (FerretDB#2960)",
    "$group with more than one accumulator":
        "FerretDB computes only the first; the others come back as 0 (FerretDB#4616)",
    "$project with a bare field path value ({bb: '$b'})":
        "FerretDB outputs the literal string '$b' instead of the field's value (FerretDB#2768)",
    "$push/$addToSet with an empty $each on a missing field":
        "MongoDB creates the field as []; FerretDB leaves it missing",
    "$pull with a query condition ({$pull: {arr: {$gte: 3}}})":
        "FerretDB 1.24 compares the operand for equality with each element instead of "
        "matching it as a condition (FerretDB#1765); only scalar operands are generated",
    "positional projection ({'arr.$': 1}) with the array condition on another path "
    "(e.g. a filter on subs.k projecting subs.$)":
        "FerretDB 1.24 answers 51246 unless the filter has a condition on the projected "
        "path itself; MongoDB uses whichever array condition matched",
    "positional updates ($, $[], $[<id>] with arrayFilters)":
        "FerretDB 1.24 reads $ and $[] as field names (error 28) and answers arrayFilters "
        "with 238; test_positional_updates_ferretdb_lacks keeps watch",
    "$bitsAllSet/$bitsAllClear/$bitsAnySet/$bitsAnyClear on a field holding an array":
        "FerretDB 1.24 tests the array itself and never matches; MongoDB tests each element "
        "(jstests/core/bittest.js: {a: [1.1, 54]} matches {$bitsAllSet: 0}); test_bit_tests "
        "draws only fields that never hold arrays",
    "$sort on a $group key that may be an array":
        "not a FerretDB bug: an array key ties with its smallest/largest element, so the "
        "order is not determined; such results are compared as multisets, without $limit",
}


def _base_seed() -> int:
    raw = os.environ.get("DJONGO_DIFFERENTIAL_SEED", "")
    if raw == "random":
        seed = random.SystemRandom().randrange(1 << 31)
        print(f"DJONGO_DIFFERENTIAL_SEED={seed}")
        return seed
    return int(raw) if raw else BASE_SEED


SEED = _base_seed()

# ---------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------

WORDS = ["apple", "Apple", "banana", "cherry", "date", "", "fig", "grape", "apricot",
         "Banana split", "kiwi", "a", "z"]
INTS = list(range(-3, 8))
DOUBLES = [-2.5, -1.0, 0.5, 1.0, 2.0, 2.5, 3.25, 7.75, 100.125]
BIG = [Int64(2**40), Int64(-(2**35)), Int64(5)]
EPOCH = dt.datetime(2024, 1, 1)
DATES = [EPOCH + dt.timedelta(days=d, milliseconds=ms)
         for d, ms in [(0, 0), (1, 500), (10, 0), (30, 250), (-5, 0), (365, 1)]]


def _scalar(rng: random.Random):
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(INTS)
    if kind < 0.5:
        return rng.choice(DOUBLES)
    if kind < 0.75:
        return rng.choice(WORDS)
    if kind < 0.82:
        return None
    if kind < 0.9:
        return rng.choice([True, False])
    if kind < 0.95:
        return rng.choice(DATES)
    return rng.choice(BIG)


def _subdoc(rng: random.Random):
    d = {}
    if rng.random() < 0.85:
        d["k"] = rng.choice(INTS + [None, "x"])
    if rng.random() < 0.8:
        d["v"] = rng.choice(WORDS)
    return d


def make_doc(rng: random.Random, _id: int) -> dict:
    doc: dict = {"_id": _id}
    # a: polymorphic (any scalar, an array of scalars, a subdocument), sometimes missing
    r = rng.random()
    if r < 0.1:
        pass
    elif r < 0.75:
        doc["a"] = _scalar(rng)
    elif r < 0.9:
        doc["a"] = [_scalar(rng) for _ in range(rng.randint(0, 4))]
    else:
        doc["a"] = _subdoc(rng)
    # b: mostly ints, sometimes doubles/null/missing
    r = rng.random()
    if r < 0.7:
        doc["b"] = rng.choice(INTS)
    elif r < 0.85:
        doc["b"] = rng.choice(DOUBLES)
    elif r < 0.92:
        doc["b"] = None
    # s: strings
    if rng.random() < 0.9:
        doc["s"] = rng.choice(WORDS) if rng.random() < 0.9 else rng.choice(INTS)
    # f: doubles
    if rng.random() < 0.8:
        doc["f"] = rng.choice(DOUBLES)
    # flag, d
    if rng.random() < 0.8:
        doc["flag"] = rng.random() < 0.5
    if rng.random() < 0.7:
        doc["d"] = rng.choice(DATES)
    # n: nested document (or a scalar, or missing)
    r = rng.random()
    if r < 0.7:
        n: dict = {}
        if rng.random() < 0.8:
            n["x"] = rng.choice(INTS + DOUBLES[:3] + [None])
        if rng.random() < 0.7:
            n["y"] = rng.choice(WORDS)
        if rng.random() < 0.5:
            n["z"] = {"w": _scalar(rng)} if rng.random() < 0.8 else {}
        doc["n"] = n
    elif r < 0.8:
        doc["n"] = _scalar(rng)
    # arr: array of scalars (ints mostly, some strings), sometimes a scalar or missing
    r = rng.random()
    if r < 0.75:
        doc["arr"] = [rng.choice(INTS + ["x", "y"] if rng.random() < 0.2 else INTS)
                      for _ in range(rng.randint(0, 5))]
    elif r < 0.85:
        doc["arr"] = rng.choice(INTS)
    # subs: array of subdocuments
    if rng.random() < 0.75:
        doc["subs"] = [_subdoc(rng) for _ in range(rng.randint(0, 4))]
    return doc


def make_docs(seed: int, n: int = N_DOCS) -> list[dict]:
    rng = random.Random(seed)
    return [make_doc(rng, i) for i in range(n)]


# ---------------------------------------------------------------------------------------
# Query grammar
# ---------------------------------------------------------------------------------------

SCALAR_FIELDS = ["a", "b", "s", "f", "flag", "d", "n.x", "n.y", "n.z.w", "n", "nope"]
ARRAY_FIELDS = ["arr", "subs.k", "subs.v", "a"]
ALL_FIELDS = SCALAR_FIELDS + ARRAY_FIELDS
TYPE_ALIASES = ["int", "double", "string", "null", "bool", "date", "array", "object",
                "number", "long"]
REGEXES = ["^a", "an", "e$", "^$", "^[A-Z]", "p+l", "^b.*t$"]


def _value_for(rng: random.Random, field: str):
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.15:   # cross-type comparisons
        return _scalar(rng)
    if field in ("b", "n.x", "arr", "subs.k"):
        return rng.choice(INTS + DOUBLES[:4])
    if field in ("s", "n.y", "subs.v"):
        return rng.choice(WORDS)
    if field == "f":
        return rng.choice(DOUBLES + INTS[:3])
    if field == "flag":
        return rng.choice([True, False])
    if field == "d":
        return rng.choice(DATES)
    if field == "n":
        return rng.choice([{"x": rng.choice(INTS)}, {}, {"x": 1, "y": "apple"}])
    return _scalar(rng)


# Paths that run through an array of subdocuments ("subs" holds [{k, v}, ...]). FerretDB 1.24
# mishandles several operators on them (see EXCLUDED_FORMS), so they get a narrower grammar.
DOC_ARRAY_PATHS = {"subs.k", "subs.v"}


def _non_null_value_for(rng: random.Random, field: str):
    while True:
        v = _value_for(rng, field)
        if v is not None:
            return v


def gen_leaf(rng: random.Random) -> dict:
    field = rng.choice(ALL_FIELDS)
    narrow = field in DOC_ARRAY_PATHS

    def value():
        return _non_null_value_for(rng, field) if narrow else _value_for(rng, field)

    form = rng.random()
    if form < 0.15:
        return {field: value()}
    if form < 0.45:
        ops = ["$eq", "$gt", "$gte", "$lt", "$lte"] + ([] if narrow else ["$ne"])
        return {field: {rng.choice(ops): value()}}
    if form < 0.55 and not narrow:
        op = rng.choice(["$gt", "$lt", "$gte", "$lte"])
        op2 = {"$gt": "$lt", "$gte": "$lte", "$lt": "$gt", "$lte": "$gte"}[op]
        return {field: {op: value(), op2: value()}}
    if form < 0.65:
        op = "$in" if narrow else rng.choice(["$in", "$nin"])   # see EXCLUDED_FORMS
        return {field: {op: [value() for _ in range(rng.randint(0, 4))]}}
    if form < 0.7:
        return {field: {"$exists": rng.random() < 0.5}}
    if form < 0.76:
        return {field: {"$type": rng.choice(TYPE_ALIASES)}}
    if form < 0.83:
        f = rng.choice(["s", "n.y", "subs.v", "a"])
        if rng.random() < 0.5:
            q = {"$regex": rng.choice(REGEXES)}
            if rng.random() < 0.4:
                q["$options"] = "i"
            return {f: q}
        return {f: Regex(rng.choice(REGEXES), "i" if rng.random() < 0.4 else "")}
    if form < 0.87:
        return {rng.choice(["arr", "subs", "a"]): {"$size": rng.randint(0, 4)}}
    if form < 0.91:
        f = rng.choice(["arr", "a"])
        return {f: {"$all": [_value_for(rng, "arr") for _ in range(rng.randint(1, 3))]}}
    if form < 0.96:
        # one operator only, never $ne, never on arrays of subdocuments: see EXCLUDED_FORMS
        op = rng.choice(["$gt", "$lt", "$gte", "$lte", "$eq"])
        return {"arr": {"$elemMatch": {op: rng.choice(INTS)}}}
    # $not around an operator expression (not on paths through arrays of subdocuments)
    inner = gen_leaf(rng)
    (f, cond), = inner.items()
    if f in DOC_ARRAY_PATHS:
        return inner
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        return {f: {"$not": cond}}
    if isinstance(cond, Regex):
        return {f: {"$not": cond}}
    return {f: {"$not": {"$eq": cond}}}


def gen_filter(rng: random.Random, depth: int = 0) -> dict:
    r = rng.random()
    if depth < 2 and r < 0.25:
        op = rng.choice(["$and", "$or", "$nor"])
        return {op: [gen_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if r < 0.35:
        # implicit AND of two leaves on different fields
        q: dict = {}
        for _ in range(2):
            leaf = gen_leaf(rng)
            (f, v), = leaf.items()
            q.setdefault(f, v)
        return q
    return gen_leaf(rng)


SORT_FIELDS = ["a", "b", "s", "f", "flag", "d", "n.x", "n.y", "n", "arr", "nope"]
PROJ_FIELDS = ["a", "b", "s", "f", "flag", "d", "n", "n.x", "n.y", "n.z.w", "arr", "subs",
               "subs.k", "nope"]


def gen_sort(rng: random.Random) -> list[tuple[str, int]]:
    keys = rng.sample(SORT_FIELDS, rng.randint(1, 2))
    return [(k, rng.choice([1, -1])) for k in keys] + [("_id", rng.choice([1, -1]))]


def gen_projection(rng: random.Random) -> dict | None:
    r = rng.random()
    if r < 0.3:
        return None
    fields = rng.sample(PROJ_FIELDS, rng.randint(1, 3))
    # a path and its own prefix/extension in one projection is a "path collision" error
    chosen: list[str] = []
    for f in fields:
        if any(f == c or f.startswith(c + ".") or c.startswith(f + ".") for c in chosen):
            continue
        chosen.append(f)
    value = 1 if r < 0.65 else 0
    proj = {f: value for f in chosen}
    if rng.random() < 0.3:
        proj["_id"] = 0
    return proj


# ---------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------

def canon(value):
    """A JSON-able, type-preserving rendering of a BSON value (int32, int64 and double differ)."""
    if isinstance(value, dict):
        return {"{}": [[k, canon(v)] for k, v in value.items()]}
    if isinstance(value, list):
        return {"[]": [canon(v) for v in value]}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, Int64):
        return {"long": int(value)}
    if isinstance(value, int):
        return {"int" if -(2**31) <= value < 2**31 else "long": value}
    if isinstance(value, float):
        return {"double": repr(value)}
    if isinstance(value, dt.datetime):
        return {"date": value.isoformat()}
    if isinstance(value, Regex):
        return {"regex": [value.pattern, value.flags]}
    if value is None:
        return None
    return {type(value).__name__: str(value)}


def key_of(doc) -> str:
    return json.dumps(canon(doc), sort_keys=True)


def show(value) -> str:
    return json.dumps(value, default=_json_default, sort_keys=False)


def _json_default(v):
    if isinstance(v, dt.datetime):
        return {"$date": v.isoformat()}
    if isinstance(v, Regex):
        return {"$regex": v.pattern, "$options": str(v.flags)}
    return repr(v)


class Outcome:
    def __init__(self, docs=None, error: OperationFailure | None = None, extra=None):
        self.docs = docs
        self.error = error
        self.extra = extra

    def describe(self) -> str:
        if self.error is not None:
            details = self.error.details or {}
            return f"error {self.error.code}: {details.get('errmsg', self.error)}"
        out = show(self.docs)
        if self.extra is not None:
            out = f"{show(self.extra)} {out}"
        return out


def run(fn) -> Outcome:
    try:
        result = fn()
        if isinstance(result, tuple):
            return Outcome(result[1], extra=result[0])
        return Outcome(result)
    except OperationFailure as e:
        return Outcome(error=e)


NOT_IMPLEMENTED = 238


class Recorder:
    """Collects mismatches across a test's cases and fails once with all of them."""

    def __init__(self, name: str):
        self.name = name
        self.mismatches: list[str] = []
        self.cases = 0
        self.both_errored = 0   # find/aggregate cases both refused with the same error code

    def compare(self, case_seed: int, description: str, ours: Outcome, theirs: Outcome,
                ordered: bool, involved: list[dict]):
        self.cases += 1
        if theirs.error is not None and theirs.error.code == NOT_IMPLEMENTED:
            self.mismatches.append(
                f"[{self.name} case seed {case_seed}] FerretDB does not implement this form "
                f"(exclude it from the grammar): {description}\n  FerretDB: {theirs.describe()}")
            return
        if ours.error is not None or theirs.error is not None:
            if (ours.error is not None and theirs.error is not None
                    and ours.error.code == theirs.error.code):
                self.both_errored += 1
                return
            self._report(case_seed, description, ours, theirs, involved)
            return
        a = [key_of(d) for d in ours.docs]
        b = [key_of(d) for d in theirs.docs]
        if not ordered:
            a, b = sorted(a), sorted(b)
        if a != b or key_of(ours.extra) != key_of(theirs.extra):
            self._report(case_seed, description, ours, theirs, involved)

    def _report(self, case_seed, description, ours, theirs, involved):
        msg = [f"[{self.name}] base seed {SEED}, case seed {case_seed}",
               f"  query: {description}"]
        both_docs = ours.error is None and theirs.error is None
        ours_by_id = _by_id(ours.docs) if both_docs else None
        theirs_by_id = _by_id(theirs.docs) if both_docs else None
        if ours_by_id is not None and theirs_by_id is not None:
            if key_of(ours.extra) != key_of(theirs.extra):
                msg.append(f"  ours:     {show(ours.extra)}\n  FerretDB: {show(theirs.extra)}")
            only_ours = sorted(set(ours_by_id) - set(theirs_by_id), key=repr)
            only_theirs = sorted(set(theirs_by_id) - set(ours_by_id), key=repr)
            changed = [i for i in ours_by_id if i in theirs_by_id
                       and key_of(ours_by_id[i]) != key_of(theirs_by_id[i])]
            msg.append(f"  {len(ours.docs)} results from ours, {len(theirs.docs)} from FerretDB; "
                       f"_ids only in ours: {only_ours[:20]}; only in FerretDB: "
                       f"{only_theirs[:20]}; same _id, different content: {changed[:20]}")
            if not (only_ours or only_theirs or changed):
                msg.append("  same documents, different order: "
                           f"ours {list(ours_by_id)[:30]}, FerretDB {list(theirs_by_id)[:30]}")
            source = {d.get("_id"): d for d in involved}
            for i in (only_ours + only_theirs)[:6]:
                msg.append(f"  stored doc: {show(source.get(i, '?'))}")
            for i in changed[:4]:
                msg.append(f"  stored doc: {show(source.get(i, '?'))}\n"
                           f"    ours:     {show(ours_by_id[i])}\n"
                           f"    FerretDB: {show(theirs_by_id[i])}")
        else:
            msg.append(f"  ours:     {_clip(ours.describe())}")
            msg.append(f"  FerretDB: {_clip(theirs.describe())}")
        self.mismatches.append("\n".join(msg))

    def finish(self):
        print(f"{self.name}: {self.cases} cases, {len(self.mismatches)} mismatches, "
              f"{self.both_errored} rejected by both with the same code")
        if self.mismatches:
            shown = "\n\n".join(self.mismatches[:15])
            more = len(self.mismatches) - 15
            pytest.fail(f"{len(self.mismatches)} of {self.cases} {self.name} cases differ "
                        f"between our engine and FerretDB (reproduce with "
                        f"DJONGO_DIFFERENTIAL_SEED={SEED}):\n\n{shown}"
                        + (f"\n\n... and {more} more" if more > 0 else ""), pytrace=False)


def _by_id(docs) -> dict | None:
    """{_id: doc} when every result has a distinct, hashable _id; None otherwise."""
    out: dict = {}
    for d in docs:
        i = d.get("_id") if isinstance(d, dict) else None
        try:
            if i is None or i in out:
                return None
        except TypeError:
            return None
        out[i] = d
    return out


def _clip(text: str, limit: int = 3000) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------

SCALAR_INDEXES = [([("b", 1)], {}), ([("s", 1), ("f", -1)], {}), ([("d", -1), ("b", 1)], {}),
                  ([("n.x", 1)], {}), ([("flag", 1)], {"sparse": True}), ([("f", 1)], {})]
ARRAY_INDEXES = [([("a", 1)], {}), ([("arr", -1)], {}), ([("subs.k", 1)], {})]


@pytest.fixture(scope="module")
def docs():
    return make_docs(SEED)


@pytest.fixture(scope="module")
def pair(ours, ferretdb, docs):
    """The `docs` collection loaded into both servers: (ours, FerretDB) database handles."""
    dbs = (ours[DB_NAME], ferretdb[DB_NAME])
    for db in dbs:
        db.drop_collection("docs")
        db["docs"].insert_many(copy.deepcopy(docs))
        assert db["docs"].count_documents({}) == len(docs)
    # Ours answers from indexes where its planner can (FerretDB 1.24 scans): single,
    # compound, descending, nested, sparse and multikey ones, so index bounds, index
    # order for sorts and counts from keys are compared too.
    for keys, options in ARRAY_INDEXES + SCALAR_INDEXES:
        dbs[0]["docs"].create_index(keys, **options)
    yield dbs
    for db in dbs:
        db.client.drop_database(DB_NAME)


def _case_rng(kind: str, i: int) -> tuple[int, random.Random]:
    case_seed = random.Random(f"{SEED}:{kind}:{i}").randrange(1 << 31)
    return case_seed, random.Random(case_seed)


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------

def test_find_filters(pair, docs):
    ours, theirs = pair
    rec = Recorder("find")
    for i in range(N_FIND):
        case_seed, rng = _case_rng("find", i)
        flt = gen_filter(rng)
        rec.compare(case_seed, f"find({show(flt)})",
                    run(lambda c=ours, f=flt: list(c.docs.find(f))),
                    run(lambda c=theirs, f=flt: list(c.docs.find(f))),
                    ordered=False, involved=docs)
    rec.finish()


def test_find_sort_skip_limit_projection(pair, docs):
    ours, theirs = pair
    rec = Recorder("sorted find")
    for i in range(N_SORTED):
        case_seed, rng = _case_rng("sorted", i)
        flt = gen_filter(rng) if rng.random() < 0.7 else {}
        sort = gen_sort(rng)
        skip = rng.choice([0, 0, 3, 17])
        limit = rng.choice([0, 5, 20, 50])
        proj = gen_projection(rng)

        def q(db, flt=flt, sort=sort, skip=skip, limit=limit, proj=proj):
            return list(db.docs.find(flt, proj).sort(sort).skip(skip).limit(limit))

        desc = (f"find({show(flt)}, {show(proj)}).sort({show(sort)})"
                f".skip({skip}).limit({limit})")
        # Without _id in the output the order check still holds, but the involved-doc
        # listing cannot name documents; it is printed from the filter instead.
        rec.compare(case_seed, desc, run(lambda: q(ours)), run(lambda: q(theirs)),
                    ordered=True, involved=docs)
    rec.finish()


def gen_update(rng: random.Random) -> dict:
    """An update document whose operators touch disjoint paths."""
    used: list[str] = []

    def free(path: str) -> bool:
        ok = not any(path == u or path.startswith(u + ".") or u.startswith(path + ".")
                     for u in used)
        if ok:
            used.append(path)
        return ok

    update: dict = {}
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["$set", "$unset", "$inc", "$push", "$pull", "$addToSet", "$min",
                         "$max", "$rename"])
        if op == "$set":
            path = rng.choice(["b", "s", "n.x", "n.new", "newf", "n.z.w"])
            if free(path):
                update.setdefault(op, {})[path] = _value_for(rng, path)
        elif op == "$unset":
            path = rng.choice(["a", "b", "n.y", "nope", "subs"])
            if free(path):
                update.setdefault(op, {})[path] = ""
        elif op == "$inc":
            path = rng.choice(["b", "f", "n.x", "cnt"])
            if free(path):
                update.setdefault(op, {})[path] = rng.choice([1, -2, 0.5, Int64(3)])
        elif op in ("$min", "$max"):
            path = rng.choice(["b", "f", "n.x", "s", "d", "fresh"])
            if free(path):
                update.setdefault(op, {})[path] = _value_for(rng, path)
        elif op in ("$push", "$addToSet"):
            path = rng.choice(["arr", "newarr"])
            if free(path):
                if rng.random() < 0.4:
                    # never an empty $each: see EXCLUDED_FORMS
                    val = {"$each": [rng.choice(INTS) for _ in range(rng.randint(1, 3))]}
                else:
                    val = rng.choice(INTS + ["x"])
                update.setdefault(op, {})[path] = val
        elif op == "$pull":
            if free("arr"):
                update.setdefault(op, {})["arr"] = rng.choice(INTS + ["x"])
        elif op == "$rename":
            src, dst = rng.choice([("s", "s2"), ("n.y", "n.yy"), ("f", "ff"), ("nope", "n2")])
            if free(src) and free(dst):
                update.setdefault(op, {})[src] = dst
    if not update:
        update = {"$set": {"touched": True}}
    return update


def test_update_many(ours, ferretdb, docs):
    rec = Recorder("update")
    for i in range(N_UPDATE):
        case_seed, rng = _case_rng("update", i)
        start = rng.randrange(0, N_DOCS - 40)
        subset = copy.deepcopy(docs[start:start + 40])
        flt = gen_filter(rng) if rng.random() < 0.7 else {}
        update = gen_update(rng)
        coll = f"upd{i}"

        def apply(client, coll=coll, subset=subset, flt=flt, update=update):
            c = client[DB_NAME][coll]
            c.drop()
            c.insert_many(copy.deepcopy(subset))
            try:
                try:
                    res = c.update_many(flt, update)
                    outcome = {"matched": res.matched_count, "modified": res.modified_count}
                except OperationFailure as e:
                    # Both must refuse with the same code, and leave the same documents
                    # behind (MongoDB does not roll back the ones updated before the error).
                    if e.code == NOT_IMPLEMENTED:
                        raise
                    outcome = {"error code": e.code}
                return outcome, list(c.find().sort("_id", 1))
            finally:
                c.drop()

        rec.compare(case_seed, f"update_many({show(flt)}, {show(update)})",
                    run(lambda: apply(ours)), run(lambda: apply(ferretdb)),
                    ordered=True, involved=subset)
    rec.finish()


def gen_pipeline(rng: random.Random) -> tuple[list[dict], bool]:
    """A pipeline and whether its output order is fully determined."""
    pipeline: list[dict] = []
    ordered = False
    if rng.random() < 0.7:
        pipeline.append({"$match": gen_filter(rng)})
    shape = rng.random()
    if shape < 0.35:
        # group by a field, count and sum
        # one accumulator per $group: see EXCLUDED_FORMS
        key = rng.choice(["$s", "$b", "$flag", "$n.x", "$n.y", "$a", None, "$nope"])
        acc = rng.choice([{"n": {"$sum": 1}}, {"c": {"$count": {}}},
                          {"total": {"$sum": rng.choice(["$b", "$f", "$n.x", "$s", "$arr"])}}])
        pipeline.append({"$group": {"_id": key, **acc}})
        # "$a" can be an array: such group keys sort by their smallest/largest element and
        # tie with scalars, so their order is not determined.
        if key != "$a" and rng.random() < 0.6:
            pipeline.append({"$sort": {"_id": rng.choice([1, -1])}})
            ordered = True
            if rng.random() < 0.4:
                pipeline.append({"$limit": rng.randint(1, 5)})
    elif shape < 0.55:
        # unwind an array, optionally group on its elements
        path = rng.choice(["$arr", "$subs", "$a"])
        pipeline.append({"$unwind": path})   # the string form only: see EXCLUDED_FORMS
        if rng.random() < 0.5:
            sub = {"$arr": "$arr", "$subs": "$subs.k", "$a": "$a"}[path]
            pipeline.append({"$group": {"_id": sub, "n": {"$sum": 1}}})
            pipeline.append({"$sort": {"_id": 1}})
            ordered = True
        else:
            pipeline.append({"$project": {"_id": 1, path[1:]: 1}})
    elif shape < 0.7:
        pipeline.append({"$count": "total"})
        ordered = True
    elif shape < 0.85:
        sort = dict(gen_sort(rng))
        pipeline.append({"$sort": sort})
        if rng.random() < 0.5:
            pipeline.append({"$skip": rng.choice([0, 2, 10])})
        pipeline.append({"$limit": rng.randint(1, 30)})
        proj = gen_projection(rng)
        if proj:
            pipeline.append({"$project": proj})
        ordered = True
    else:
        # $project computing $sum/$type (no bare field-path values: see EXCLUDED_FORMS)
        proj: dict = {"_id": 1}
        if rng.random() < 0.3:
            proj["b"] = 1
        if rng.random() < 0.7:
            proj["t"] = {"$type": rng.choice(["$a", "$b", "$n", "$nope", "$arr", "$n.x"])}
        if rng.random() < 0.7 or len(proj) == 1:
            proj["total"] = {"$sum": rng.choice(["$arr", "$b", "$a", "$f", "$n.x"])}
        pipeline.append({"$project": proj})
    return pipeline, ordered


def test_aggregate(pair, docs):
    ours, theirs = pair
    rec = Recorder("aggregate")
    for i in range(N_AGGREGATE):
        case_seed, rng = _case_rng("aggregate", i)
        pipeline, ordered = gen_pipeline(rng)
        rec.compare(case_seed, f"aggregate({show(pipeline)})",
                    run(lambda p=pipeline: list(ours.docs.aggregate(p))),
                    run(lambda p=pipeline: list(theirs.docs.aggregate(p))),
                    ordered=ordered, involved=docs)
    rec.finish()



# ---------------------------------------------------------------------------------------
# Stages FerretDB 1.24 lacks
# ---------------------------------------------------------------------------------------

# Each answers 238 (NotImplemented) on FerretDB 1.24.2; test_stages_ferretdb_lacks keeps the
# list honest. Ours runs every one of them.
STAGES_FERRETDB_LACKS = {
    "$bucket": {"groupBy": "$b", "boundaries": [0, 3, 100], "default": "other"},
    "$bucketAuto": {"groupBy": "$b", "buckets": 3},
    "$sample": {"size": 5},
    "$graphLookup": {"from": "docs", "startWith": "$b", "connectFromField": "arr",
                     "connectToField": "_id", "as": "g", "maxDepth": 1},
    "$redact": {"$cond": [{"$eq": ["$flag", False]}, "$$PRUNE", "$$DESCEND"]},
    "$setWindowFields": {"sortBy": {"_id": 1},
                         "output": {"run": {"$sum": "$b",
                                            "window": {"documents": ["unbounded", "current"]}}}},
    "$sortByCount": "$s",
    "$replaceRoot": {"newRoot": {"x": "$b"}},
    "$replaceWith": {"x": "$b"},
    "$facet": {"all": [{"$count": "n"}]},
    "$lookup": {"from": "docs", "localField": "b", "foreignField": "_id", "as": "j"},
    "$unionWith": "docs",
    "$densify": {"field": "_id", "range": {"step": 0.5, "bounds": "full"}},
    "$fill": {"sortBy": {"_id": 1}, "output": {"b": {"method": "locf"}, "f": {"value": 0}}},
}


def test_stages_ferretdb_lacks(pair):
    ours, theirs = pair
    problems = []
    for name, spec in STAGES_FERRETDB_LACKS.items():
        pipeline = [{name: spec}, {"$limit": 3}]
        theirs_out = run(lambda p=pipeline: list(theirs.docs.aggregate(p)))
        if theirs_out.error is None or theirs_out.error.code != NOT_IMPLEMENTED:
            problems.append(f"FerretDB now answers {name} ({theirs_out.describe()[:200]}): "
                            "add it to the compared grammar and drop it from the list")
        ours_out = run(lambda p=pipeline: list(ours.docs.aggregate(p)))
        if ours_out.error is not None or not ours_out.docs:
            problems.append(f"ours fails {name}: {ours_out.describe()[:300]}")
    assert not problems, "\n".join(problems)


def _count(db, flt) -> int:
    out = list(db.docs.aggregate([{"$match": flt}, {"$count": "n"}]))
    return out[0]["n"] if out else 0


def test_bucket_matches_range_counts(pair, docs):
    """$bucket on ours against one $match range + $count per bucket on FerretDB."""
    ours, theirs = pair
    rec = Recorder("bucket")
    for i in range(N_AGGREGATE // 6):
        case_seed, rng = _case_rng("bucket", i)
        field = rng.choice(["b", "f", "n.x"])
        bounds = sorted(set(rng.sample(INTS + DOUBLES, rng.randint(2, 5))))
        if len(bounds) < 2:
            continue
        stage = {"$bucket": {"groupBy": f"${field}", "boundaries": bounds, "default": "other"}}
        ours_out = run(lambda st=stage: list(ours.docs.aggregate([st])))

        def theirs_fn(f=field, bs=bounds):
            # Only numbers fall inside numeric boundaries; everything else (strings, null,
            # missing, booleans) lands in the default bucket.
            out = []
            for lo, hi in zip(bs, bs[1:], strict=False):
                n = _count(theirs, {f: {"$gte": lo, "$lt": hi}})
                if n:
                    out.append({"_id": lo, "count": n})
            rest = len(docs) - sum(d["count"] for d in out)
            if rest:
                out.append({"_id": "other", "count": rest})
            return out

        rec.compare(case_seed, f"aggregate([{show(stage)}])", ours_out, run(theirs_fn),
                    ordered=True, involved=docs)
    rec.finish()


def test_window_partition_totals_match_group(pair, docs):
    """$setWindowFields over whole partitions on ours against $group on FerretDB."""
    ours, theirs = pair
    rec = Recorder("setWindowFields")
    for i in range(N_AGGREGATE // 6):
        case_seed, rng = _case_rng("window", i)
        # No numeric keys: 1 and 1.0 share a partition, and this test's Python lookups
        # would tell them apart.
        key = rng.choice(["$s", "$flag", "$n.y"])
        value = rng.choice(["$b", "$f", "$n.x", "$s"])
        stage = {"$setWindowFields": {"partitionBy": key, "output": {
            "total": {"$sum": value}, "c": {"$count": {}}}}}
        pipeline = [stage, {"$project": {"_id": 1, "total": 1, "c": 1}}]
        ours_out = run(lambda p=pipeline: list(ours.docs.aggregate(p)))

        def theirs_fn(k=key, v=value):
            # One accumulator per $group (FerretDB computes only the first: EXCLUDED_FORMS).
            totals = {key_of(g["_id"]): g["t"] for g in
                      theirs.docs.aggregate([{"$group": {"_id": k, "t": {"$sum": v}}}])}
            counts = {key_of(g["_id"]): g["c"] for g in
                      theirs.docs.aggregate([{"$group": {"_id": k, "c": {"$sum": 1}}}])}
            out = []
            # find, not $project: FerretDB 1.24 outputs a bare field path as a string.
            for d in theirs.docs.find({}):
                part = d
                for step in k[1:].split("."):
                    part = part.get(step) if isinstance(part, dict) else None
                out.append({"_id": d["_id"], "total": totals[key_of(part)],
                            "c": counts[key_of(part)]})
            return out

        rec.compare(case_seed, f"aggregate({show(pipeline)})", ours_out, run(theirs_fn),
                    ordered=False, involved=docs)
    rec.finish()


def test_running_sum_matches_prefix_sums(pair, docs):
    """A documents-window running $sum on ours against FerretDB summing each prefix."""
    ours, theirs = pair
    rec = Recorder("running sum")
    for i in range(3):
        case_seed, rng = _case_rng("running", i)
        value = rng.choice(["$b", "$f", "$n.x"])
        lo = rng.choice(["unbounded", -3, -1])
        # A sample of positions keeps FerretDB's side to a few dozen queries; the window
        # is computed over the whole collection before the $match.
        checked = sorted(rng.sample(range(len(docs)), 25))
        stage = {"$setWindowFields": {"sortBy": {"_id": 1}, "output": {
            "run": {"$sum": value, "window": {"documents": [lo, "current"]}}}}}
        pipeline = [stage, {"$match": {"_id": {"$in": checked}}},
                    {"$project": {"_id": 1, "run": 1}}]
        ours_out = run(lambda p=pipeline: list(ours.docs.aggregate(p)))

        def theirs_fn(v=value, lo=lo, checked=checked):
            out = []
            for i in checked:
                first = 0 if lo == "unbounded" else max(0, i + lo)
                g = list(theirs.docs.aggregate([
                    {"$match": {"_id": {"$gte": first, "$lte": i}}},
                    {"$group": {"_id": None, "t": {"$sum": v}}}]))
                out.append({"_id": i, "run": g[0]["t"] if g else 0})
            return out

        rec.compare(case_seed, f"aggregate({show(pipeline)})", ours_out, run(theirs_fn),
                    ordered=True, involved=docs)
    rec.finish()


def test_sort_by_count_and_sample(pair, docs):
    ours, theirs = pair
    rec = Recorder("sortByCount")
    for key in ["$s", "$flag", "$b"]:
        stage = {"$sortByCount": key}
        ours_out = run(lambda st=stage: list(ours.docs.aggregate([st])))
        # Ties in count come in no particular order: compared as multisets.
        theirs_out = run(lambda k=key: list(theirs.docs.aggregate(
            [{"$group": {"_id": k, "count": {"$sum": 1}}}])))
        rec.compare(0, f"aggregate([{show(stage)}])", ours_out, theirs_out, ordered=False,
                    involved=docs)
        counts = [d["count"] for d in ours_out.docs or []]
        assert counts == sorted(counts, reverse=True), f"{stage}: not sorted by count"
    rec.finish()
    ids = {d["_id"] for d in theirs.docs.find({}, {"_id": 1})}
    picked = [d["_id"] for d in ours.docs.aggregate([{"$sample": {"size": 40}}])]
    assert len(picked) == 40 and len(set(picked)) == 40 and set(picked) <= ids


N_POSITIONAL = 40 * SCALE


def test_positional_projection(pair, docs):
    """{"arr.$": 1}: the element of `arr` the filter matched, or 51246 when none was."""
    ours, theirs = pair
    rec = Recorder("positional projection")
    for i in range(N_POSITIONAL):
        case_seed, rng = _case_rng("positional", i)
        # FerretDB 1.24 finds the position only from a condition on the projected path
        # itself (see EXCLUDED_FORMS), so the array condition is on `arr`.
        op = rng.choice(["$eq", "$gt", "$gte", "$lt", "$lte", "$in"])
        value = ([rng.choice(INTS) for _ in range(rng.randint(1, 3))] if op == "$in"
                 else rng.choice(INTS))
        flt = {"arr": {op: value}}
        if rng.random() < 0.4:
            flt["b"] = {"$gte": rng.choice(INTS)}
        proj = {"arr.$": 1}
        if rng.random() < 0.5:
            proj[rng.choice(["s", "b", "n.x"])] = 1

        def q(db, flt=flt, proj=proj):
            return list(db.docs.find(flt, proj).sort("_id", 1))

        rec.compare(case_seed, f"find({show(flt)}, {show(proj)})", run(lambda: q(ours)),
                    run(lambda: q(theirs)), ordered=True, involved=docs)
    rec.finish()


# Array-position updates FerretDB 1.24 does not implement: it reads `$` and `$[]` as field
# names (PathNotViable, 28) and answers `arrayFilters` with 238. Ours follows MongoDB's
# manual; tests/test_engine_positional.py and crates/engine/src/update/positional.rs check it.
POSITIONAL_UPDATES_FERRETDB_LACKS = [
    ({"arr": 5}, {"$set": {"arr.$": 50}}, None),
    ({}, {"$inc": {"arr.$[]": 1}}, None),
    ({}, {"$inc": {"arr.$[big]": 1}}, [{"big": {"$gt": 3}}]),
]


def test_positional_updates_ferretdb_lacks(ours, ferretdb):
    problems = []
    for flt, update, array_filters in POSITIONAL_UPDATES_FERRETDB_LACKS:
        outcomes = {}
        for name, client in (("ours", ours), ("FerretDB", ferretdb)):
            c = client[DB_NAME]["positional_updates"]
            c.drop()
            c.insert_many([{"_id": 1, "arr": [1, 5, 9]}])
            try:
                c.update_many(flt, update, array_filters=array_filters)
                outcomes[name] = (None, c.find_one({"_id": 1})["arr"])
            except OperationFailure as e:
                outcomes[name] = (e.code, None)
            finally:
                c.drop()
        code, _ = outcomes["FerretDB"]
        if code not in (28, NOT_IMPLEMENTED):
            problems.append(f"FerretDB now answers {show(update)} ({outcomes['FerretDB']}): "
                            "compare it result for result and drop it from the list")
        if outcomes["ours"][0] is not None:
            problems.append(f"ours refuses {show(update)}: {outcomes['ours']}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------
# Bit tests (FerretDB 1.24 implements them, except on arrays: EXCLUDED_FORMS)
# ---------------------------------------------------------------------------------------

# Fields that never hold an array: ints, negative ints, doubles with fractions, Int64,
# strings, dates, booleans, null and missing.
BIT_FIELDS = ["b", "f", "n.x", "s", "n.z.w", "d", "flag", "nope"]
BIT_POSITIONS = [0, 1, 2, 3, 5, 6, 31, 40, 62, 63, 64, 100]


def gen_bit_test(rng: random.Random) -> dict:
    op = rng.choice(["$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear"])
    form = rng.random()
    if form < 0.45:
        operand = sorted(rng.sample(BIT_POSITIONS, rng.randint(0, 4)))
    elif form < 0.75:
        operand = rng.choice([0, 1, 2, 3, 5, 6, 7, 54, 127, Int64(2**40), Int64(2**62)])
    else:
        operand = Binary(bytes(rng.randrange(256) for _ in range(rng.randint(1, 3))))
    return {rng.choice(BIT_FIELDS): {op: operand}}


def test_bit_tests(pair, docs):
    ours, theirs = pair
    rec = Recorder("bit tests")
    for i in range(N_FIND // 3):
        case_seed, rng = _case_rng("bits", i)
        flt = gen_bit_test(rng)
        if rng.random() < 0.3:
            flt = {"$or": [flt, gen_bit_test(rng)]}
        rec.compare(case_seed, f"find({show(flt)})",
                    run(lambda c=ours, f=flt: list(c.docs.find(f))),
                    run(lambda c=theirs, f=flt: list(c.docs.find(f))),
                    ordered=False, involved=docs)
    rec.finish()


# ---------------------------------------------------------------------------------------
# $graphLookup, $out and $merge: FerretDB 1.24 lacks them; compared with what it answers
# ---------------------------------------------------------------------------------------

def _value_at(doc, path: str):
    """(present, value) of a dotted path through subdocuments."""
    value = doc
    for step in path.split("."):
        if not isinstance(value, dict) or step not in value:
            return False, None
        value = value[step]
    return True, value


def _reachable(db, start, max_depth) -> list[list]:
    """[_id, depth] of the documents a breadth-first walk along docs.arr -> docs._id reaches
    from `start`, using finds only."""
    frontier = start if isinstance(start, list) else [start]
    looked_up: list = []
    found: dict = {}
    depth = 0
    while True:
        values = [v for v in frontier if v not in looked_up]
        looked_up.extend(values)
        if not values:
            break
        nxt = []
        for d in db.docs.find({"_id": {"$in": values}}).sort("_id", 1):
            if d["_id"] in found:
                continue
            found[d["_id"]] = depth
            present, arr = _value_at(d, "arr")
            if present:
                nxt.extend(arr if isinstance(arr, list) else [arr])
        if max_depth is not None and depth >= max_depth:
            break
        depth += 1
        frontier = nxt
    return [[i, Int64(dep)] for i, dep in sorted(found.items())]


def test_graph_lookup_matches_breadth_first_finds(pair, docs):
    """$graphLookup on ours against a breadth-first walk of finds on FerretDB."""
    ours, theirs = pair
    rec = Recorder("graphLookup")
    for i in range(6):
        case_seed, rng = _case_rng("graph", i)
        max_depth = rng.choice([None, 0, 1, 3])
        start = rng.choice(["b", "arr", "n.x"])
        ids = sorted(rng.sample(range(len(docs)), 15))
        stage = {"from": "docs", "startWith": f"${start}", "connectFromField": "arr",
                 "connectToField": "_id", "as": "g", "depthField": "depth"}
        if max_depth is not None:
            stage["maxDepth"] = max_depth
        pipeline = [{"$match": {"_id": {"$in": ids}}}, {"$graphLookup": stage},
                    {"$sort": {"_id": 1}}]

        def ours_fn(p=pipeline):
            return [{"_id": d["_id"], "reach": sorted([g["_id"], g["depth"]] for g in d["g"])}
                    for d in ours.docs.aggregate(p)]

        def theirs_fn(ids=ids, start=start, max_depth=max_depth):
            out = []
            for d in theirs.docs.find({"_id": {"$in": ids}}).sort("_id", 1):
                present, value = _value_at(d, start)
                # A missing startWith looks nothing up; null looks up null.
                reach = _reachable(theirs, value, max_depth) if present else []
                out.append({"_id": d["_id"], "reach": reach})
            return out

        rec.compare(case_seed, f"aggregate({show(pipeline)})", run(ours_fn), run(theirs_fn),
                    ordered=True, involved=docs)
    rec.finish()


def test_out_and_merge_write_what_ferretdb_finds(pair, docs):
    """$out/$merge on ours (FerretDB 1.24 answers 238) write exactly the documents a find on
    FerretDB returns for the same filter; $merge then updates them as $set would."""
    ours, theirs = pair
    for stage in ({"$out": "diff_out"}, {"$merge": {"into": "diff_out"}}):
        theirs_out = run(lambda st=stage: list(theirs.docs.aggregate([st])))
        assert theirs_out.error is not None and theirs_out.error.code == NOT_IMPLEMENTED, (
            f"FerretDB now answers {stage}: compare it directly")
    rec = Recorder("$out/$merge")
    marked = {"b": {"$gt": 2}}
    for i in range(4):
        case_seed, rng = _case_rng("out", i)
        flt = gen_filter(rng)
        ours.docs.aggregate([{"$match": flt}, {"$out": "diff_out"}])
        rec.compare(case_seed, f"aggregate([{{$match: {show(flt)}}}, {{$out: 'diff_out'}}])",
                    run(lambda: list(ours.diff_out.find().sort("_id", 1))),
                    run(lambda f=flt: list(theirs.docs.find(f).sort("_id", 1))),
                    ordered=True, involved=docs)
        # Mark the documents with b > 2 that the target has, then add those it lacks.
        ours.docs.aggregate([{"$match": marked}, {"$project": {"marked": {"$literal": True}}},
                             {"$merge": {"into": "diff_out", "whenNotMatched": "discard"}}])
        ours.docs.aggregate([{"$match": marked},
                             {"$merge": {"into": "diff_out", "whenMatched": "keepExisting"}}])

        def theirs_merged(f=flt):
            kept = {d["_id"]: d for d in theirs.docs.find(f)}
            for d in theirs.docs.find(marked):
                if d["_id"] in kept:
                    kept[d["_id"]]["marked"] = True
                else:
                    kept[d["_id"]] = d
            return [kept[k] for k in sorted(kept)]

        rec.compare(case_seed, f"$merge after $out of {show(flt)}",
                    run(lambda: list(ours.diff_out.find().sort("_id", 1))), run(theirs_merged),
                    ordered=True, involved=docs)
    ours.drop_collection("diff_out")
    rec.finish()

"""explain shows an index for every indexed query of the ORM benchmark (benches/orm).

The commands djongo sends for the benchmark's ORM calls are captured from its command log and
handed to the engine's ``explain``; the plan it picks must read an index, not the whole
collection (and a `$lookup` must probe the joined collection's index, unless it joins most of
that collection: then one read of it, matched by key, costs less).
"""

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Avg, Count

from tests.planapp.models import Post, Writer

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 400
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def posts():
    # 50 writers, as the benchmark's 50 authors.
    writers = Writer.objects.bulk_create([Writer(name=f"w{i}") for i in range(50)])
    Post.objects.bulk_create([
        Post(writer=writers[i % 50], headline=f"h{i % 40}", n=i, rating=(i * 7919) % 1000 / 100,
             at=BASE + dt.timedelta(seconds=(i * 104729) % ROWS), body="lorem ipsum")
        for i in range(ROWS)
    ])


def captured_commands(call) -> list[dict]:
    """The find/aggregate/update/delete commands ``call`` sends, as command documents,
    without those on ``__schema__``."""
    from djongo.debug import capture_commands

    with capture_commands() as sent:
        call()
    return [command for name, command in sent
            if name in ("find", "aggregate", "update", "delete")
            and command.get(name) != "__schema__"]


def explain(command: dict) -> dict:
    return connection.mongo_database.command("explain", command, verbosity="executionStats")


def winning_plan(explained: dict) -> dict:
    if "queryPlanner" in explained:
        return explained["queryPlanner"]["winningPlan"]
    return explained["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]


def stages(plan: dict) -> list[dict]:
    out = [plan]
    while "inputStage" in plan:
        plan = plan["inputStage"]
        out.append(plan)
    return out


def index_read(command: dict) -> tuple[dict, str]:
    """The key pattern of the index the winning plan reads, and its direction."""
    plan = winning_plan(explain(command))
    names = [s["stage"] for s in stages(plan)]
    assert "COLLSCAN" not in names, plan
    scans = [s for s in stages(plan) if s["stage"] in ("IXSCAN", "COUNT_SCAN")]
    assert scans, plan
    return scans[0]["keyPattern"], scans[0]["direction"]


def only_command(call) -> dict:
    commands = captured_commands(call)
    assert len(commands) == 1, commands
    return commands[0]


def test_point_and_equality_reads_use_their_index(posts):
    pk = Post.objects.order_by("n")[7].pk
    cmd = only_command(lambda: Post.objects.get(pk=pk))
    assert index_read(cmd) == ({"id": 1}, "forward")
    cmd = only_command(lambda: list(Post.objects.filter(headline="h3")[:20]))
    assert index_read(cmd)[0] == {"headline": 1}


def test_a_range_with_a_sort_and_a_limit_reads_an_index(posts):
    cmd = only_command(lambda: list(
        Post.objects.filter(n__gte=ROWS // 2).order_by("-at")[:20]))
    key, direction = index_read(cmd)
    assert key in ({"at": 1}, {"n": 1})
    if key == {"at": 1}:
        assert direction == "backward"
    stats = explain(cmd)["executionStats"]
    assert stats["nReturned"] == 20
    assert stats["totalDocsExamined"] < ROWS // 2, "the limit stops the scan"


def test_the_range_with_a_sort_is_planned_once_then_cached(posts):
    def latest():
        rows = Post.objects.filter(n__gte=ROWS // 2).order_by("-at")[:20]
        return list(rows.values_list("pk", flat=True))

    cmd = only_command(latest)
    first = latest()
    # Two trials that agree make the winner the shape's cached plan.
    assert latest() == first
    collection = next(iter(cmd.values()))
    entries = list(connection.mongo_database[collection].aggregate([{"$planCacheStats": {}}]))
    active = [e for e in entries if e["isActive"]]
    assert len(active) == 1, entries
    planner = explain(cmd)["queryPlanner"]
    assert planner["winningPlan"]["isCached"] is True
    assert planner["planCacheKey"] == active[0]["planCacheKey"]
    # The cached plan answers what a trial would, for other values too (`at` is unique).
    assert latest() == first
    for low in (ROWS // 4, ROWS - 5):
        expected = sorted(Post.objects.filter(n__gte=low), key=lambda p: p.at, reverse=True)[:20]
        got = Post.objects.filter(n__gte=low).order_by("-at")[:20].values_list("pk", flat=True)
        assert list(got) == [p.pk for p in expected]


def test_a_count_is_answered_from_the_index_alone(posts):
    cmd = only_command(lambda: Post.objects.filter(rating__lt=5.0).count())
    plan = winning_plan(explain(cmd))
    assert [s["stage"] for s in stages(plan)] == ["COUNT", "COUNT_SCAN"]
    assert plan["inputStage"]["keyPattern"] == {"rating": 1}


def test_joins_probe_the_joined_collections_index(posts):
    cmd = only_command(lambda: list(Post.objects.select_related("writer")[:20]))
    lookup = explain(cmd)["stages"][1]["$lookup"]
    assert lookup["from"] == "planapp_writer"
    step = explain(cmd)["stages"][1]
    assert step["indexesUsed"] == ["planapp_writer_pkey"]
    assert step["collectionScans"] == 0 and step["strategy"] == "IndexedLoopJoin"
    # The query feeding the join reads what the join then `$limit` pulled, not the table.
    cursor = explain(cmd)["stages"][0]["$cursor"]["executionStats"]
    assert cursor["nReturned"] == cursor["totalDocsExamined"] == 20
    # Every writer's posts: most of the posts, read once and matched by key
    # rather than probed writer by writer.
    cmd = only_command(lambda: list(
        Writer.objects.annotate(Count("post"), Avg("post__n"))))
    step = explain(cmd)["stages"][1]
    assert step["$lookup"]["from"] == "planapp_post"
    assert step["strategy"] == "HashJoin" and step["collectionScans"] == 1
    assert step["joinEstimate"]["documents"] == ROWS
    assert step["joinEstimate"]["matches"] > ROWS // 2
    # The $group after the join accumulates each post into its writer's
    # running count and average as the posts are read (a hash aggregate).
    assert step["groupedJoin"] == "perJoinKey"
    # Two writers' posts: a few of them, through the writer index.
    cmd = only_command(lambda: list(
        Writer.objects.filter(name__in=["w1", "w2"]).annotate(Count("post"))))
    step = explain(cmd)["stages"][1]
    assert step["strategy"] == "IndexedLoopJoin" and step["collectionScans"] == 0
    assert len(step["indexesUsed"]) == 1


def test_updates_and_deletes_find_their_rows_by_index(posts):
    cmd = only_command(lambda: Post.objects.filter(n__lt=50).update(rating=1.5))
    assert index_read(cmd)[0] == {"n": 1}
    Post.objects.filter(n__lt=5).update(headline="gone")
    cmds = captured_commands(lambda: Post.objects.filter(headline="gone").delete())
    deletes = [c for c in cmds if "delete" in c]
    assert deletes and index_read(deletes[0])[0] == {"headline": 1}

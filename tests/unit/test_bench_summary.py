"""The one table `make bench` ends with, and the DynamoDB sync's planned 1% change."""

from __future__ import annotations

from bench.dynamo_store import planned_change
from bench.link_sync import dataset
from bench.summary import Figure, at_most, render


def test_both_stores_share_a_row_per_measure_and_a_missing_figure_shows_a_dash():
    figures = [
        Figure("warm p50", "redis", "0.012 ms vs 0.018 ms", 0.67, "<= 1x", True),
        Figure("warm p50", "dynamodb", "1.4 ms vs 2.0 ms", 0.7, "<= 1x", True),
        Figure("archive", "redis", "900 kB", 0.6, "<= 1x", True),
    ]
    lines = render(figures, []).splitlines()
    warm = next(line for line in lines if line.startswith("warm p50"))
    assert "0.012 ms vs 0.018 ms" in warm and "1.4 ms vs 2.0 ms" in warm
    assert warm.index("0.67x") < warm.index("1.4 ms")  # Redis's columns, then DynamoDB's
    archive = next(line for line in lines if line.startswith("archive"))
    assert " - " in archive
    assert "Traffic routers" not in "\n".join(lines)  # no router figure, no router table


def test_a_missed_target_is_named_under_the_table():
    ratio, target, ok = at_most(1.65, 1.5)
    figures = [
        Figure("sync", "redis", "1.45 s vs 0.88 s", ratio, target, ok),
        Figure("failover", "route53", "155 s"),  # no target: shown, not judged
    ]
    text = render(figures, ["scaled x4"])
    assert "<= 1.5x MISSED" in text
    assert "0 targets held, 1 missed: sync (redis)" in text
    assert "Traffic routers" in text and "- scaled x4" in text


def test_a_one_percent_change_plans_one_write_per_changed_link_and_prunes_the_closed_ones():
    _, index, changed = dataset(3000)
    before = {link.slug: link for link in index.links}
    after = {link.slug: link for link in changed.links}
    added = after.keys() - before.keys()
    removed = before.keys() - after.keys()
    edited = {s for s in before.keys() & after.keys() if before[s] != after[s]}
    assert len(added) == len(removed) == len(edited) == 10
    written, pruned = planned_change(index, changed)
    assert written == len(added) + len(removed) + len(edited)
    assert pruned == len(removed) + len(edited)  # the entries the new generation closed

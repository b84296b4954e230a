"""Planning a DynamoDB publish: generations per item, only changed items written (pure)."""

from __future__ import annotations

from functions.links import dynamo_sync
from functions.links.dynamo_items import Entry, format_entries, parse_entries, value_at
from functions.links.dynamo_sync import TableState, plan_sync
from functions.links.index import build_index
from functions.links.model import GONE_RETENTION_SECONDS, Link, value_text

NOW = 1_800_000_000
A = Link("a", "https://example.com/a")
B = Link("b", "https://example.com/b", 301)
C = Link("c", "https://example.com/c")


def state_after(links: list[Link], generation: int = 1) -> TableState:
    index = build_index(links)
    items = {
        link.slug: ((Entry(generation, None, value_text(link)),), generation) for link in links
    }
    return TableState(generation, index.version, index.count, items=items)


def test_first_publish_writes_every_link_as_generation_one():
    plan = plan_sync(TableState(), build_index([A, B]), now=NOW)
    assert plan.generation == 1
    assert plan.added == ("a", "b")
    assert dict(plan.writes) == {
        "a": (Entry(1, None, value_text(A)),),
        "b": (Entry(1, None, value_text(B)),),
    }


def test_a_change_writes_only_changed_added_and_removed_items():
    b2 = Link("b", "https://example.com/b2")
    plan = plan_sync(state_after([A, B]), build_index([b2, C]), now=NOW)
    assert (plan.generation, plan.added, plan.changed, plan.removed) == (2, ("c",), ("b",), ("a",))
    assert dict(plan.writes) == {
        "a": (Entry(1, 2, value_text(A)),),  # generation 1 still answers it
        "b": (Entry(1, 2, value_text(B)), Entry(2, None, value_text(b2))),
        "c": (Entry(2, None, value_text(C)),),
    }


def test_republishing_the_served_version_writes_nothing():
    assert plan_sync(state_after([A, B]), build_index([A, B]), now=NOW).writes == ()


def test_a_rerun_replans_over_what_a_killed_run_wrote():
    state = state_after([A, B])
    killed = plan_sync(state, build_index([A, Link("b", "https://x.example/")]), now=NOW)
    for slug, entries in killed.writes:  # written, but _meta never said generation 2
        state.items[slug] = (entries, 2)
    plan = plan_sync(state, build_index([A, B, C]), now=NOW)
    assert plan.generation == 2
    assert plan.changed == () and plan.added == ("c",)
    # b goes back to what generation 1 had; a, never touched, is not written.
    assert dict(plan.writes) == {
        "b": (Entry(1, None, value_text(B)),),
        "c": (Entry(2, None, value_text(C)),),
    }


def test_pruning_drops_entries_no_region_needs():
    state = state_after([A])
    state.items["b"] = ((Entry(1, 2, value_text(B)),), 2)
    state.items["a"] = ((Entry(1, 2, "old"), Entry(2, None, value_text(A))), 2)
    state.generation, state.floor = 2, 2
    state.version = build_index([A]).version
    plan = plan_sync(state, build_index([A]), now=NOW)
    assert dict(plan.writes) == {"a": (Entry(2, None, value_text(A)),), "b": ()}


def test_links_past_their_gone_period_are_not_published():
    ancient = Link("ancient", "https://example.com/x", expires=NOW - GONE_RETENTION_SECONDS - 1)
    gone = Link("gone", "https://example.com/y", expires=NOW - 60)
    plan = plan_sync(TableState(), build_index([ancient, gone]), now=NOW)
    assert plan.added == ("gone",)


def test_a_stale_sequencer_writes_nothing():
    state = state_after([A])
    state.sequencer = "0055AED6DCD90281E5"
    plan = plan_sync(state, build_index([B]), now=NOW, sequencer="0055AED6DCD90281E4")
    assert plan.stale and plan.writes == ()


def test_the_same_publish_retried_is_not_stale():
    state = state_after([A])
    state.sequencer = "0055AED6DCD90281E5"
    plan = plan_sync(state, build_index([A]), now=NOW, sequencer="0055AED6DCD90281E5")
    assert not plan.stale and plan.generation == 1 and plan.writes == ()


def test_entries_round_trip_and_answer_by_generation():
    entries = (Entry(1, 3, "302 - 0 https://a/"), Entry(3, None, "301 q 0 https://b/?x=1"))
    text = format_entries(entries)
    assert parse_entries(text) == entries
    assert [value_at(text, g) for g in (0, 1, 2, 3, 9)] == [
        None,
        "302 - 0 https://a/",
        "302 - 0 https://a/",
        "301 q 0 https://b/?x=1",
        "301 q 0 https://b/?x=1",
    ]


def test_batches_are_resent_until_dynamodb_has_processed_them(monkeypatch):
    sent, pauses = [], []
    answers = [
        {"Responses": {"t": [1]}, "UnprocessedKeys": {"t": {"Keys": ["b"]}}},
        {"Responses": {"t": [2]}, "UnprocessedKeys": {}},
    ]

    def batch_get_item(RequestItems):
        sent.append(RequestItems)
        return answers[len(sent) - 1]

    monkeypatch.setattr(dynamo_sync.time, "sleep", pauses.append)
    seen = []
    dynamo_sync._until_processed(
        batch_get_item, {"t": {"Keys": ["a", "b"]}}, "UnprocessedKeys", seen.append
    )
    assert sent == [{"t": {"Keys": ["a", "b"]}}, {"t": {"Keys": ["b"]}}]
    assert seen == answers and pauses == [0.05]

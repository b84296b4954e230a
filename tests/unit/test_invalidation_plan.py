"""Which CDN paths a publish invalidates: every slug whose answer changed, and no more."""

from hypothesis import given
from hypothesis import strategies as st

from functions.links.index import build_index
from functions.links.invalidation import (
    DIRECTORY_PATH,
    EVERYTHING,
    WILDCARD_LIMIT,
    invalidation_paths,
    path_matches,
    stale_slugs,
)
from functions.links.model import Link

BEFORE = build_index(
    [
        Link("docs", "https://docs.example.com/"),
        Link("gh", "https://github.com/example"),
        Link("go", "https://go.example.com/"),
        Link("old", "https://old.example.com/"),
        Link("same", "https://same.example.com/"),
    ]
)
AFTER = build_index(
    [
        Link("docs", "https://docs.example.com/v2"),  # changed target
        Link("gh", "https://github.com/example", 301),  # changed status only
        Link("go", "https://go.example.com/"),
        Link("gone", "https://gone.example.com/"),  # added: a 404 may be cached
        Link("same", "https://same.example.com/"),
    ]
)


def test_changed_removed_and_added_slugs_are_stale_unchanged_ones_are_not():
    assert stale_slugs(BEFORE, AFTER) == ("docs", "gh", "gone", "old")


def test_one_wildcard_per_slug_plus_the_directory_covered_prefixes_dropped():
    # /gone* is covered by nothing here ("go" did not change); /docs* covers /docs/ /docs+ ?q=
    assert invalidation_paths(BEFORE, AFTER) == (
        DIRECTORY_PATH,
        "/docs*",
        "/gh*",
        "/gone*",
        "/old*",
    )
    go = Link("go", "https://x.example.com/")
    changed_go = build_index([*AFTER.links[:2], go, *AFTER.links[3:]])
    assert "/gone*" not in invalidation_paths(BEFORE, changed_go)  # /go* covers it
    assert "/go*" in invalidation_paths(BEFORE, changed_go)


def test_a_re_run_of_the_same_version_invalidates_everything():
    # The first run may have died before its invalidation completed: converge.
    assert invalidation_paths(AFTER, AFTER) == (EVERYTHING,)


def test_a_first_publish_invalidates_everything():
    assert invalidation_paths(None, AFTER) == (EVERYTHING,)


def test_more_paths_than_cloudfront_allows_in_progress_become_one_wildcard():
    def changing(count: int):
        return build_index(
            [
                Link(f"s{i:02d}", "https://new.example/" if i < count else "https://old.example/")
                for i in range(20)
            ]
        )

    published = changing(0)
    at_limit = invalidation_paths(published, changing(WILDCARD_LIMIT - 1))  # + the directory
    assert len(at_limit) == WILDCARD_LIMIT and EVERYTHING not in at_limit
    assert invalidation_paths(published, changing(WILDCARD_LIMIT)) == (EVERYTHING,)
    assert len(invalidation_paths(published, changing(WILDCARD_LIMIT), limit=100)) == 16


def test_wildcards_match_every_spelling_cloudfront_caches_under_the_slug():
    for key in ("/docs", "/docs/", "/docs+", "/docs?q=1", "/docs/sub/page"):
        assert path_matches("/docs*", key), key
    assert not path_matches("/docs*", "/doc")
    assert path_matches(EVERYTHING, "/anything?at=all")
    assert path_matches("/docs", "/docs") and not path_matches("/docs", "/docs/")


slugs = st.from_regex(r"[a-z0-9][a-z0-9\-]{0,6}(/[a-z0-9]{1,3})?", fullmatch=True)
link_sets = st.dictionaries(slugs, st.sampled_from(["https://a.example/", "https://b.example/"]))


@given(link_sets, link_sets)
def test_every_cached_answer_that_changed_is_invalidated(before, after):
    old = build_index([Link(slug, url) for slug, url in before.items()])
    new = build_index([Link(slug, url) for slug, url in after.items()])
    paths = invalidation_paths(old, new, limit=10_000)
    for slug in set(before) | set(after):
        changed = before.get(slug) != after.get(slug)
        for spelling in (f"/{slug}", f"/{slug}/", f"/{slug}?q=1"):
            covered = any(path_matches(path, spelling) for path in paths)
            assert covered or not changed, (slug, paths)
    assert len(paths) == len(set(paths))

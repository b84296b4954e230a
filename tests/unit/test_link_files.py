"""Reading links/*.yaml: every problem at once, as file:line: slug: reason, nothing partial."""

import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from functions.links.index import build_index
from functions.links.model import Link
from functions.links.source import LinkErrors, load_links, read_link_files

REPO = Path(__file__).resolve().parents[2]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(*paths) -> list[str]:
    _, problems = read_link_files(paths)
    return [str(p) for p in problems]


def test_the_repository_links_are_valid():
    links = load_links([REPO / "links"])
    assert len(links) >= 10
    assert all(isinstance(link, Link) for link in links)


def test_short_and_long_forms(tmp_path):
    path = write(
        tmp_path,
        "a.yaml",
        """
        docs: https://docs.example.com/
        gh:
          url: https://github.com/example
          status: 301
          expires: 2027-01-01T00:00:00Z
          forward_query: true
        day:
          url: https://example.com/day
          expires: 2027-01-01
        offset:
          url: https://example.com/o
          expires: 2027-01-01T01:00:00+01:00
        quoted:
          url: https://example.com/q
          expires: "2027-01-01T00:00:00Z"
        """,
    )
    links = {link.slug: link for link in load_links([path])}
    assert links["docs"] == Link("docs", "https://docs.example.com/")
    assert links["gh"] == Link("gh", "https://github.com/example", 301, 1798761600, True)
    assert links["day"].expires == links["offset"].expires == links["quoted"].expires == 1798761600


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path):
    write(
        tmp_path,
        "a.yaml",
        """
        docs: https://docs.example.com/
        Docs: https://docs.example.com/other
        bad-status:
          url: https://example.com/
          status: "301"
        typo:
          url: https://example.com/
          stauts: 301
        naive:
          url: https://example.com/
          expires: 2027-01-01T00:00:00
        yes: https://example.com/yes
        creds: https://user:pw@example.com/
        crlf: "https://example.com/%0d%0aSet-Cookie:x"
        nourl:
          status: 301
        list: [https://example.com/]
        twice:
          url: https://example.com/1
          url: https://example.com/2
        fq:
          url: https://example.com/
          forward_query: "yes"
        healthz: https://example.com/
        """,
    )
    write(tmp_path, "b.yml", "docs: https://docs.example.com/again\n")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yml"
    assert problems_of(tmp_path) == (
        [
            f"{a}:2: docs: defined more than once (also at {b}:1)",
            f"{a}:2: docs: looks the same as 'Docs' at {a}:3 (case or look-alike characters)",
            f"{a}:3: Docs: looks the same as 'docs' at {a}:2 (case or look-alike characters)",
            f"{a}:3: Docs: slug must be lowercase; write 'docs'",
            f"{a}:6: bad-status: status must be one of 301, 302, 307, 308, not '301'",
            f"{a}:9: typo: unknown key 'stauts' (allowed: url, status, expires, forward_query,"
            " description, owner); did you mean 'status'?",
            f"{a}:12: naive: expires needs a time zone, e.g. 2027-01-01T00:00:00Z",
            f"{a}:13: yes: slug reads as true/false, not text; put it in quotes",
            f"{a}:14: creds: target may not carry user credentials ('user:pass@')",
            f"{a}:15: crlf: target has a percent-encoded control character '%0d'",
            f"{a}:16: nourl: missing 'url'",
            f"{a}:18: list: target must be a URL or a mapping with 'url', not a list",
            f"{a}:21: twice: 'url' is given twice",
            f"{a}:24: fq: forward_query must be true or false, not 'yes'",
            f"{a}:25: healthz: 'healthz' is reserved for the service",
            f"{b}:1: docs: defined more than once (also at {a}:2)",
        ]
    )


def test_unicode_lookalikes_collide(tmp_path):
    write(tmp_path, "a.yaml", "docs: https://a.example/\nｄｏｃｓ: https://b.example/\n")
    write(tmp_path, "b.yaml", "dоcs: https://c.example/\n")  # Cyrillic о
    found = "\n".join(problems_of(tmp_path))
    assert "a.yaml:2: ｄｏｃｓ: looks the same as 'docs'" in found
    assert "b.yaml:1: dоcs: looks the same as 'docs'" in found
    assert "b.yaml:1: dоcs: slug has a non-ASCII character 'о' (U+043E)" in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docs: [unclosed\n", "a.yaml:2: invalid YAML"),
        ("docs: 'unterminated\n", "a.yaml:2: invalid YAML"),
        ("- https://example.com/\n", "a.yaml:1: a link file is a mapping of slug: target"),
        ("just text\n", "a.yaml:1: a link file is a mapping of slug: target"),
        ("a: https://x.example/\n---\nb: https://y.example/\n", "a.yaml:2: a link file holds one"),
        ("x: !!python/object:os.system echo\n", "a.yaml:1: x: unsupported YAML tag"),
        ("x: !custom https://x.example/\n", "a.yaml:1: x: unsupported YAML tag '!custom'"),
        ("base: &b https://x.example/\ncopy: *b\n", "a.yaml:2: copy: YAML aliases"),
        ("x:\n  <<: {url: https://x.example/}\n", "a.yaml:2: x: unknown key '<<'"),
        ("? [a, b]\n: https://x.example/\n", "a.yaml:1: unexpected list here"),
        ("x:\n  url: https://x.example/\n  expires: 2027-13-01\n", "a.yaml:3: x: invalid value"),
        ("x:\n  url: https://x.example/\n  expires: soon\n", "a.yaml:3: x: expires must be"),
    ],
)
def test_bad_yaml_is_a_clear_error(tmp_path, text, expected):
    write(tmp_path, "a.yaml", text)
    found = problems_of(tmp_path / "a.yaml")
    assert any(expected in problem for problem in found), found


def test_empty_file_is_no_links_but_an_empty_directory_is_an_error(tmp_path):
    write(tmp_path, "links/empty.yaml", "# nothing yet\n")
    assert load_links([tmp_path / "links"]) == []
    (tmp_path / "none").mkdir()
    assert problems_of(tmp_path / "none") == [
        f"{tmp_path / 'none'}: no .yaml or .yml link files here"
    ]
    assert problems_of(tmp_path / "missing.yaml") == [
        f"{tmp_path / 'missing.yaml'}: no such file or directory"
    ]


def test_non_utf8_and_oversized_files(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"ok: https://x.example/\nbad: caf\xe9\n")
    (tmp_path / "huge.yaml").write_bytes(b"#" * (8 * 1024 * 1024 + 1))
    assert problems_of(tmp_path / "latin1.yaml") == [
        f"{tmp_path / 'latin1.yaml'}:2: file is not UTF-8"
    ]
    assert "the limit is 8388608" in problems_of(tmp_path / "huge.yaml")[0]


def test_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 12):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    levels.append("bomb: *a11")
    write(tmp_path, "bomb.yaml", "\n".join(levels) + "\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    found = problems_of(tmp_path / "bomb.yaml")
    assert time.process_time() - started < 1.0  # 9**11 expansions would take hours
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
    assert any("bomb: YAML aliases" in problem for problem in found)


def test_deep_nesting_cannot_crash_the_reader(tmp_path):
    # libyaml's own composer overflows the C stack on this input and kills the
    # interpreter, so run it in a child process and expect a clean report.
    write(tmp_path, "deep.yaml", "a: " + "[" * 200_000 + "]" * 200_000 + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "functions.links", "validate", str(tmp_path / "deep.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "deep.yaml:1: YAML nested too deeply" in result.stderr


def test_a_file_named_twice_is_read_once(tmp_path):
    path = write(tmp_path, "a.yaml", "docs: https://docs.example.com/\n")
    assert load_links([path, tmp_path, str(path)]) == [Link("docs", "https://docs.example.com/")]


def test_load_links_raises_with_every_problem(tmp_path):
    write(tmp_path, "a.yaml", "A: https://x.example/\nb: nope\n")
    with pytest.raises(LinkErrors) as caught:
        load_links([tmp_path])
    assert len(caught.value.problems) == 2
    assert str(caught.value).endswith("2 problems in the link set")


def test_index_is_identical_whatever_the_file_order_or_formatting(tmp_path):
    write(tmp_path, "one/a.yaml", "b: https://b.example/\na:\n  url: https://a.example/\n")
    write(tmp_path, "one/b.yaml", "c: {url: 'https://c.example/', status: 302}\n")
    write(tmp_path, "two/z.yaml", "c: https://c.example/\n")
    write(
        tmp_path,
        "two/y.yaml",
        "# reordered, long form, explicit defaults\na: {url: https://a.example/, "
        'forward_query: false}\nb:\n  url: "https://b.example/"\n',
    )
    one = build_index(load_links([tmp_path / "one"]))
    two = build_index(load_links([tmp_path / "two"]))
    assert one.to_bytes() == two.to_bytes()
    assert one.version == two.version

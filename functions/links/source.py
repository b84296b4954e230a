"""Reading `links/*.yaml`: every problem reported at once, as `file:line: slug: reason`.

The YAML is read as a stream of parser events rather than composed into a tree,
because a link file has a fixed, shallow shape (slug -> URL, or slug -> mapping
of scalars). Reading events lets hostile input fail early and cheaply:
aliases are refused where they appear (no alias bomb can expand), and nesting
deeper than the shape allows stops the file at once (libyaml's own composer
recurses and crashes the interpreter at ~100,000 levels).
"""

from __future__ import annotations

import contextlib
import difflib
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import yaml
from confusable_homoglyphs import confusables

from .model import (
    DEFAULT_STATUS,
    REDIRECT_STATUSES,
    Link,
    description_problem,
    owner_problem,
    slug_problem,
    target_problem,
    type_name,
)

MAX_FILE_BYTES = 8 * 1024 * 1024
LINK_FILE_SUFFIXES = (".yaml", ".yml")
LINK_FIELDS = ("url", "status", "expires", "forward_query", "description", "owner")
_SKIP_DEPTH_LIMIT = 32

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, order=True)
class Problem:
    """One reason the link set cannot be published."""

    file: str
    line: int
    slug: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.slug}: {self.reason}" if self.slug else f"{where}: {self.reason}"


class LinkErrors(Exception):
    """The link set is invalid; `problems` lists every reason, in file order."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems)
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in the link set"
        super().__init__("\n".join([*map(str, self.problems), summary]))


@dataclass(frozen=True)
class SourcedLink:
    link: Link
    file: str
    line: int


def load_links(paths: Iterable[str | Path] = ("links",)) -> list[Link]:
    """Every link under `paths` (files or directories), or LinkErrors with all problems."""
    sourced, problems = read_link_files(paths)
    if problems:
        raise LinkErrors(problems)
    return [entry.link for entry in sourced]


def read_link_files(paths: Iterable[str | Path]) -> tuple[list[SourcedLink], list[Problem]]:
    """All links and all problems under `paths`; links are usable only if problems is empty."""
    problems: list[Problem] = []
    entries: list[_Entry] = []
    for file in _link_files(paths, problems):
        entries.extend(_read_file(file, problems))
    sourced = []
    for entry in entries:
        link = entry.validate(problems)
        if link is not None:
            sourced.append(SourcedLink(link, entry.file, entry.line))
    problems.extend(_collisions(entries))
    return sourced, sorted(problems)


def _link_files(paths: Iterable[str | Path], problems: list[Problem]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in LINK_FILE_SUFFIXES and p.is_file()
            )
            if not found:
                problems.append(Problem(str(path), 0, None, "no .yaml or .yml link files here"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 0, None, "no such file or directory"))
    seen: set[Path] = set()
    unique = []
    for file in files:
        if file.resolve() not in seen:
            seen.add(file.resolve())
            unique.append(file)
    return unique


@dataclass
class _Entry:
    """One top-level `slug: ...` item as written, before validation.

    `written` is the slug's text in the file (`yes` stays `yes` even though
    YAML reads it as true); field values that could not be read are _Invalid.
    """

    file: str
    line: int
    slug: object
    written: str | None
    fields: dict[str, tuple[object, int]]
    problems: list[tuple[str, int]]

    @property
    def slug_text(self) -> str | None:
        return self.slug if isinstance(self.slug, str) else None

    def validate(self, problems: list[Problem]) -> Link | None:
        before = len(problems)

        def report(reason: str, line: int | None = None) -> None:
            problems.append(Problem(self.file, line or self.line, self.written, reason))

        for reason, line in self.problems:
            report(reason, line)
        if isinstance(self.slug, _Invalid):
            report(self.slug.reason)
        elif not isinstance(self.slug, str):
            report(f"slug reads as {type_name(self.slug)}, not text; put it in quotes")
        elif reason := slug_problem(self.slug):
            report(reason)
        for value, line in self.fields.values():
            if isinstance(value, _Invalid):
                report(value.reason, line)
        values = {name: value for name, (value, _) in self.fields.items()}
        lines = {name: line for name, (_, line) in self.fields.items()}

        def check(name: str, default: object, problem) -> object:
            value = values.get(name, default)
            if not isinstance(value, _Invalid) and (reason := problem(value)):
                report(reason, lines.get(name))
            return value

        url = None
        if "url" in values:
            url = check("url", "", target_problem)
        elif not self.problems:
            report("missing 'url'")
        status = check("status", DEFAULT_STATUS, _status_problem)
        expires_at, reason = _expiry(values.get("expires"))
        if reason:
            report(reason, lines.get("expires"))
        forward = check("forward_query", False, _forward_problem)
        description = (
            check("description", None, description_problem) if "description" in values else None
        )
        owner = check("owner", None, owner_problem) if "owner" in values else None
        if len(problems) > before:
            return None
        return Link(
            str(self.slug), str(url), int(status), expires_at, bool(forward), description, owner
        )


def _status_problem(status: object) -> str | None:
    if type(status) is int and status in REDIRECT_STATUSES:
        return None
    return f"status must be one of {', '.join(map(str, REDIRECT_STATUSES))}, not {status!r}"


def _forward_problem(value: object) -> str | None:
    return (
        None if isinstance(value, bool) else f"forward_query must be true or false, not {value!r}"
    )


def _expiry(value: object) -> tuple[int | None, str | None]:
    if value is None or isinstance(value, _Invalid):
        return None, None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return None, "expires needs a time zone, e.g. 2027-01-01T00:00:00Z"
        return int(value.timestamp()), None
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()), None
    return None, (f"expires must be a date or timestamp like 2027-01-01T00:00:00Z, not {value!r}")


def _read_file(path: Path, problems: list[Problem]) -> list[_Entry]:
    name = str(path)

    def report(line: int, reason: str, slug: str | None = None) -> None:
        problems.append(Problem(name, line, slug, reason))

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            report(0, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            return []
        data = path.read_bytes()
    except OSError as exc:
        report(0, f"cannot read: {exc.strerror}")
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        report(data.count(b"\n", 0, exc.start) + 1, "file is not UTF-8")
        return []
    reader = _EventReader(text)
    try:
        return reader.read_document(name, report)
    except _Abort as abort:
        report(abort.line, abort.reason)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        report(mark.line + 1 if mark else 0, f"invalid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        report(0, f"invalid YAML: {exc}")
    finally:
        reader.close()
    return []


class _Abort(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


class _EventReader:
    """Reads one link file's parser events into `_Entry` items."""

    def __init__(self, text: str):
        self.loader = _Loader(text)

    def close(self) -> None:
        self.loader.dispose()

    def _next(self) -> yaml.Event:
        return self.loader.get_event()

    def _peek(self) -> yaml.Event:
        return self.loader.peek_event()

    def read_document(self, name: str, report) -> list[_Entry]:
        self._next()  # StreamStart
        if isinstance(self._peek(), yaml.StreamEndEvent):
            return []
        self._next()  # DocumentStart
        event = self._peek()
        entries: list[_Entry] = []
        if isinstance(event, yaml.MappingStartEvent):
            self._next()
            while not isinstance(self._peek(), yaml.MappingEndEvent):
                entries.append(self._read_entry(name))
            self._next()
        elif self._value_or_skip() is not None:  # None: an empty document, no links
            report(_line(event), "a link file is a mapping of slug: target")
        self._next()  # DocumentEnd
        if not isinstance(self._peek(), yaml.StreamEndEvent):
            report(_line(self._peek()), "a link file holds one YAML document, not several")
        return entries

    def _read_entry(self, name: str) -> _Entry:
        key_event = self._peek()
        written = key_event.value if isinstance(key_event, yaml.ScalarEvent) else None
        entry = _Entry(name, _line(key_event), self._value_or_skip(), written, {}, [])
        value_event = self._peek()
        if isinstance(value_event, yaml.MappingStartEvent):
            self._next()
            self._read_fields(entry)
            return entry
        if isinstance(value_event, yaml.SequenceStartEvent):
            self._skip()
            value = []
        else:
            value = self._value_or_skip()
        if isinstance(value, str | _Invalid) or value is None:
            entry.fields["url"] = (value, _line(value_event))
        else:
            reason = f"target must be a URL or a mapping with 'url', not {type_name(value)}"
            entry.problems.append((reason, _line(value_event)))
        return entry

    def _read_fields(self, entry: _Entry) -> None:
        while not isinstance(self._peek(), yaml.MappingEndEvent):
            key_line = _line(self._peek())
            key = self._value_or_skip()
            value_line = _line(self._peek())
            value = self._value_or_skip()
            if isinstance(key, _Invalid):
                entry.problems.append((key.reason, key_line))
            elif key not in LINK_FIELDS:
                hint = difflib.get_close_matches(str(key), LINK_FIELDS, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                allowed = ", ".join(LINK_FIELDS)
                reason = f"unknown key {key!r} (allowed: {allowed}){suggestion}"
                entry.problems.append((reason, key_line))
            elif key in entry.fields:
                entry.problems.append((f"{key!r} is given twice", key_line))
            else:
                entry.fields[key] = (value, value_line)
        self._next()

    def _value_or_skip(self) -> object:
        """The next node as a scalar value, or an _Invalid after skipping it."""
        event = self._peek()
        if isinstance(event, yaml.AliasEvent):
            self._next()
            return _Invalid("YAML aliases (*name) are not allowed in link files")
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(self._next())
        kind = "list" if isinstance(event, yaml.SequenceStartEvent) else "mapping"
        self._skip()
        return _Invalid(f"unexpected {kind} here")

    def _scalar(self, event: yaml.ScalarEvent) -> object:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == "tag:yaml.org,2002:merge":
            return event.value  # '<<' is just an (unknown) key in a link file
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError:
            return _Invalid(f"unsupported YAML tag {tag!r}")
        except ValueError as exc:  # e.g. a timestamp with a month 13
            return _Invalid(f"invalid value {event.value!r}: {exc}")

    def _skip(self) -> None:
        depth = 0
        while True:
            event = self._next()
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > _SKIP_DEPTH_LIMIT:
                    raise _Abort(_line(event), "YAML nested too deeply; the rest is not read")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
            if depth == 0:
                return


@dataclass(frozen=True)
class _Invalid:
    reason: str


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1


def _skeleton(slug: str) -> str:
    """What a slug looks like to a reader: case, width and look-alike characters folded."""
    folded = unicodedata.normalize("NFKC", slug).casefold()
    if folded.isascii():
        return folded
    found = confusables.is_confusable(folded, greedy=True, preferred_aliases=["latin"]) or []
    for item in found:
        latin = [h["c"] for h in item["homoglyphs"] if h["c"].isascii()]
        if latin:
            folded = folded.replace(item["character"], latin[0].casefold())
    return folded


def _collisions(entries: list[_Entry]) -> Iterator[Problem]:
    by_slug: dict[str, list[_Entry]] = defaultdict(list)
    by_look: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        if entry.slug_text is not None and not entry.problems:
            by_slug[entry.slug_text].append(entry)
    for slug, same in by_slug.items():
        by_look[_skeleton(slug)].append(same[0])
        if len(same) > 1:
            for entry in same:
                others = ", ".join(f"{o.file}:{o.line}" for o in same if o is not entry)
                yield Problem(
                    entry.file, entry.line, slug, f"defined more than once (also at {others})"
                )
    for alike in by_look.values():
        if len(alike) > 1:
            for entry in alike:
                others = ", ".join(
                    f"{o.slug_text!r} at {o.file}:{o.line}" for o in alike if o is not entry
                )
                yield Problem(
                    entry.file,
                    entry.line,
                    entry.slug_text,
                    f"looks the same as {others} (case or look-alike characters)",
                )

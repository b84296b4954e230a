"""How the link index lives in a DynamoDB global table (see docs/dynamodb-store.md).

Global tables replicate every item on its own, in no order, last writer wins.
So a publish never changes a link in place: every link item carries the
generations it belongs to, and each region follows its own pointer item to
the generation it serves. A generation is a whole index version; a region's
pointer moves only once that region holds every item of it.

- Link item, key `pk` = the slug: `e` holds one entry per line,
  `<from> <until> <value>`: the link's value (model.value_text) for the
  generations from <= g < until (`until` is `-` while open). `w` is the
  generation that last wrote the item (what the completeness check compares).
- `_region#<name>`: the pointer, the generation that region serves, with that
  generation's index version and link count (what health reports).
- `_meta`: the writer's bookkeeping (latest written generation, its version,
  count and S3 sequencer, the pruning floor, the writer's lease).

Slugs never start with '_', so these keys cannot collide with a link. This
module is on the redirect cold-start path: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY = "pk"
ENTRIES = "e"
WRITTEN = "w"
META_KEY = "_meta"
REGION_KEY_PREFIX = "_region#"
OPEN = "-"


def region_key(region: str) -> str:
    return REGION_KEY_PREFIX + region


@dataclass(frozen=True, slots=True)
class Entry:
    """A link's value for the generations start <= g < end (end None: still current)."""

    start: int
    end: int | None
    value: str

    def covers(self, generation: int) -> bool:
        return self.start <= generation and (self.end is None or generation < self.end)


def format_entries(entries: tuple[Entry, ...]) -> str:
    return "\n".join(f"{e.start} {OPEN if e.end is None else e.end} {e.value}" for e in entries)


def parse_entries(text: str) -> tuple[Entry, ...]:
    entries = []
    for line in text.split("\n"):
        start, end, value = line.split(" ", 2)
        entries.append(Entry(int(start), None if end == OPEN else int(end), value))
    return tuple(entries)


def value_at(text: str, generation: int) -> str | None:
    """The value an item's entries give `generation`, or None (not a link then).

    The hot path: one split per entry, no objects made for entries that miss.
    """
    for line in text.split("\n"):
        start, end, value = line.split(" ", 2)
        if int(start) <= generation and (end == OPEN or generation < int(end)):
            return value
    return None

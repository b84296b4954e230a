"""The figures every suite records, printed at the end of `make bench` as one table.

Each figure is one measure for one subject (a store or a router): what was
measured, the reference it is compared with (measured in the same run), the
ratio, the target and whether it holds. The summary puts the two stores side
by side, and the two routers side by side, one row per measure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .report import table

STORES = {"redis": "ElastiCache (Redis)", "dynamodb": "DynamoDB"}
ROUTERS = {"cloudflare": "Cloudflare", "route53": "Route 53"}


@dataclass(frozen=True)
class Figure:
    measure: str
    subject: str
    """A key of STORES or ROUTERS."""
    value: str
    """The measured value with its reference, e.g. `0.21 ms vs redis-py GET 0.28 ms`."""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    """None: a figure without a target (shown for comparison)."""

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return self.target
        return f"{self.target} {'ok' if self.ok else 'MISSED'}".strip()


FIGURES: list[Figure] = []
NOTES: list[str] = []


def record(
    measure: str,
    subject: str,
    value: str,
    ratio: float | None = None,
    *,
    target: str = "",
    ok: bool | None = None,
) -> None:
    if subject not in STORES | ROUTERS:
        raise ValueError(f"unknown subject {subject!r}")
    FIGURES.append(Figure(measure, subject, value, ratio, target, ok))


def at_most(ratio: float, limit: float) -> tuple[float, str, bool]:
    """(ratio, target text, whether it holds) for a `<= limit` target on a ratio."""
    return ratio, f"<= {limit:g}x", ratio <= limit


def note(text: str) -> None:
    """A line printed under the summary (how a figure was scaled, what it measures)."""
    NOTES.append(text)


def side_by_side(figures: list[Figure], subjects: dict[str, str]) -> str:
    measures = list(dict.fromkeys(f.measure for f in figures if f.subject in subjects))
    header = ["measure"]
    for name in subjects.values():
        header += [name, "ratio", "target"]
    rows = []
    for measure in measures:
        row = [measure]
        for subject in subjects:
            found = [f for f in figures if f.measure == measure and f.subject == subject]
            if found:
                figure = found[-1]
                ratio = "" if figure.ratio is None else f"{figure.ratio:.2f}x"
                row += [figure.value, ratio, figure.verdict]
            else:
                row += ["-", "", ""]
        rows.append(row)
    return table(header, rows)


def render(figures: list[Figure] | None = None, notes: list[str] | None = None) -> str:
    figures = FIGURES if figures is None else figures
    notes = NOTES if notes is None else notes
    parts = []
    for title, subjects in (("Link stores", STORES), ("Traffic routers", ROUTERS)):
        if any(f.subject in subjects for f in figures):
            parts.append(f"{title}, side by side\n{side_by_side(figures, subjects)}")
    missed = [f for f in figures if f.ok is False]
    held = sum(f.ok is True for f in figures)
    verdict = f"{held} targets held, {len(missed)} missed"
    if missed:
        verdict += ": " + "; ".join(f"{f.measure} ({f.subject})" for f in missed)
    parts.append(verdict)
    if notes:
        parts.append("\n".join(f"- {line}" for line in notes))
    return "\n\n".join(parts)

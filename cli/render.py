"""Result rendering as plain functions: rows in, text out — no terminal, no I/O, no server.

Formats: ``table`` (psql-style aligned box), ``vertical`` (one ``column | value`` block per row),
``json`` (an array of objects), ``jsonl`` (one object per line), ``csv`` and ``tsv`` (header line first).
Streamed results use :func:`stream_printer`, which prints a header at once and each row as it arrives,
sizing columns from their names and types (a longer value reprints the header, wider).
:class:`LiveTable` keeps the latest row per key for ``EMIT CHANGES`` aggregates and renders a frame.
Errors render with a caret under the offending column (:func:`format_error`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson
from wcwidth import wcswidth

FORMATS = ("table", "vertical", "json", "jsonl", "csv", "tsv")

NULL = "NULL"

# Colours are plain ANSI SGR codes: rendering stays a pure string function and works in any terminal.
_RED = "\x1b[31m"
_BOLD_RED = "\x1b[1;31m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"


def red(text: str, color: bool) -> str:
    return f"{_RED}{text}{_RESET}" if color and text else text


def dim(text: str, color: bool) -> str:
    return f"{_DIM}{text}{_RESET}" if color and text else text


def bold(text: str, color: bool) -> str:
    return f"{_BOLD}{text}{_RESET}" if color and text else text


def display_width(text: str) -> int:
    """Terminal cells taken by ``text`` (wide CJK characters count 2; unprintables count 1)."""
    w = wcswidth(text)
    return w if w >= 0 else len(text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = max(0, width - display_width(text))
    return " " * gap + text if right else text + " " * gap


def is_numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def format_cell(value: Any, fmt: str = "table") -> str:
    """One value as text for ``fmt`` (``NULL`` in table/vertical, empty in csv/tsv)."""
    if value is None:
        return "" if fmt in ("csv", "tsv") else NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        # repr is the shortest text that reads back as the same float: no silent rounding.
        return repr(value)
    text = to_json(value) if isinstance(value, dict | list) else str(value)
    if fmt == "tsv":
        # PostgreSQL COPY text conventions, so tabs/newlines never break the column structure.
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if fmt in ("table", "vertical"):
        return text.replace("\r", "").replace("\n", "↵")
    return text


# --------------------------------------------------------------------------- finite results


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """psql-style box; numbers right-aligned."""
    cells = [[format_cell(v) for v in _fit(r, len(columns))] for r in rows]
    numeric = [
        bool(rows)
        and all(is_numeric(r[i]) or r[i] is None for r in rows if i < len(r))
        and any(i < len(r) and is_numeric(r[i]) for r in rows)
        for i in range(len(columns))
    ]
    widths = [display_width(c) for c in columns]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], display_width(c))
    border = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [
        border,
        "| " + " | ".join(_pad(c, w, False) for c, w in zip(columns, widths, strict=True)) + " |",
        border,
    ]
    for row in cells:
        lines.append("| " + " | ".join(_pad(c, widths[i], numeric[i]) for i, c in enumerate(row)) + " |")
    if rows:
        lines.append(border)
    return "\n".join(lines)


def render_vertical(columns: Sequence[str], rows: Sequence[Sequence[Any]], start: int = 1) -> str:
    """One block per row, psql ``\\x`` style."""
    name_w = max((display_width(c) for c in columns), default=0)
    blocks: list[str] = []
    for n, row in enumerate(rows, start):
        title = f"-[ RECORD {n} ]"
        lines = [title + "-" * max(0, name_w + 3 - len(title) + 10)]
        for c, v in zip(columns, _fit(row, len(columns)), strict=True):
            lines.append(f"{_pad(c, name_w, False)} | {format_cell(v, 'vertical')}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def row_object(columns: Sequence[str], row: Sequence[Any], op: str | None = None) -> dict[str, Any]:
    obj = dict(zip(columns, _fit(row, len(columns)), strict=True))
    if op is not None:
        obj["_op"] = op
    return obj


def render_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return orjson.dumps(
        [row_object(columns, r) for r in rows], default=_json_default, option=orjson.OPT_INDENT_2
    ).decode()


def render_jsonl(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return "\n".join(to_json(row_object(columns, r)) for r in rows)


def _csv_line(values: Iterable[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(values))
    return buf.getvalue().rstrip("\n")


def render_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [_csv_line(columns)]
    lines += [_csv_line(format_cell(v, "csv") for v in _fit(r, len(columns))) for r in rows]
    return "\n".join(lines)


def render_tsv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["\t".join(format_cell(c, "tsv") for c in columns)]
    lines += ["\t".join(format_cell(v, "tsv") for v in _fit(r, len(columns))) for r in rows]
    return "\n".join(lines)


def render(fmt: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render a finite result in one of :data:`FORMATS`."""
    if fmt == "table":
        return render_table(columns, rows)
    if fmt == "vertical":
        return render_vertical(columns, rows)
    if fmt == "json":
        return render_json(columns, rows)
    if fmt == "jsonl":
        return render_jsonl(columns, rows)
    if fmt == "csv":
        return render_csv(columns, rows)
    if fmt == "tsv":
        return render_tsv(columns, rows)
    raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(FORMATS)})")


def _fit(row: Sequence[Any], n: int) -> list[Any]:
    """Pad/trim a row to the column count so a malformed row never breaks rendering."""
    values = list(row)
    if len(values) < n:
        values += [None] * (n - len(values))
    return values[:n]


def rows_summary(n: int, elapsed_s: float | None = None) -> str:
    noun = "row" if n == 1 else "rows"
    if elapsed_s is None:
        return f"{n} {noun}"
    return f"{n} {noun} in {elapsed_s:.1f}s"


# --------------------------------------------------------------------------- streamed results

# Starting widths by SQL type, so the header can print before any row arrives.
_TYPE_WIDTH = {
    "BOOLEAN": 5,
    "INT": 8,
    "INTEGER": 8,
    "BIGINT": 13,  # epoch milliseconds fit
    "DOUBLE": 10,
    "FLOAT": 10,
    "REAL": 10,
    "DECIMAL": 12,
    "STRING": 10,
    "VARCHAR": 10,
    "TEXT": 10,
    "TIMESTAMP": 24,
    "DATE": 10,
}
_NUMERIC_TYPES = {"INT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "REAL", "DECIMAL"}


def _base_type(sql_type: str) -> str:
    return sql_type.upper().split("(")[0].split("<")[0].strip()


def type_width(sql_type: str) -> int:
    return _TYPE_WIDTH.get(_base_type(sql_type), 12)


def type_is_numeric(sql_type: str) -> bool:
    return _base_type(sql_type) in _NUMERIC_TYPES


class StreamPrinter(Protocol):
    """Turns a stream's header and rows into text chunks (each ends with a newline when non-empty)."""

    def header(self) -> str: ...

    def row(self, values: Sequence[Any], op: str | None = None) -> str: ...

    def footer(self) -> str: ...


@dataclass
class TableStreamPrinter:
    """Aligned rows under a header printed at once; a longer value widens its column under a new header."""

    columns: Sequence[str]
    types: Sequence[str] = ()
    widths: list[int] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)
    show_op: bool = False

    def __post_init__(self) -> None:
        types = list(self.types) + [""] * (len(self.columns) - len(self.types))
        self.widths = [max(display_width(c), type_width(t)) for c, t in zip(self.columns, types, strict=False)]
        self.numeric = [type_is_numeric(t) for t in types]

    def _border(self) -> str:
        return "+" + "+".join("-" * (w + 2) for w in self.widths) + "+"

    def header(self) -> str:
        head = "| " + " | ".join(_pad(c, w, False) for c, w in zip(self.columns, self.widths, strict=True)) + " |"
        return f"{self._border()}\n{head}\n{self._border()}\n"

    def row(self, values: Sequence[Any], op: str | None = None) -> str:
        cells = [format_cell(v) for v in _fit(values, len(self.columns))]
        out = []
        widened = False
        for i, c in enumerate(cells):
            if display_width(c) > self.widths[i]:
                self.widths[i] = display_width(c)
                widened = True
            out.append(_pad(c, self.widths[i], self.numeric[i] or is_numeric(values[i] if i < len(values) else None)))
        suffix = f"  ({op})" if self.show_op and op and op != "insert" else ""
        line = "| " + " | ".join(out) + " |" + suffix + "\n"
        # Rows already on screen cannot move: a wider value gets a fresh header at the new widths, so
        # the rows from here on line up under it instead of pushing past the old borders.
        return self.header() + line if widened else line

    def footer(self) -> str:
        return self._border() + "\n"


@dataclass
class LinesStreamPrinter:
    """csv/tsv/jsonl/json/vertical streams: one self-contained line (or block) per row."""

    fmt: str
    columns: Sequence[str]
    count: int = 0

    def header(self) -> str:
        if self.fmt == "csv":
            return _csv_line(self.columns) + "\n"
        if self.fmt == "tsv":
            return "\t".join(format_cell(c, "tsv") for c in self.columns) + "\n"
        return ""

    def row(self, values: Sequence[Any], op: str | None = None) -> str:
        self.count += 1
        if self.fmt == "csv":
            return _csv_line(format_cell(v, "csv") for v in _fit(values, len(self.columns))) + "\n"
        if self.fmt == "tsv":
            return "\t".join(format_cell(v, "tsv") for v in _fit(values, len(self.columns))) + "\n"
        if self.fmt == "vertical":
            return render_vertical(self.columns, [values], start=self.count) + "\n"
        # json and jsonl: an endless array cannot be closed, so a stream is always one object per line.
        return to_json(row_object(self.columns, values, op)) + "\n"

    def footer(self) -> str:
        return ""


def stream_printer(fmt: str, columns: Sequence[str], types: Sequence[str] = ()) -> StreamPrinter:
    if fmt == "table":
        return TableStreamPrinter(columns, types)
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}")
    return LinesStreamPrinter(fmt, columns)


# --------------------------------------------------------------------------- live table


@dataclass
class LiveTable:
    """Latest row per key of an ``EMIT CHANGES`` stream; insertion order kept (first seen first)."""

    columns: Sequence[str]
    rows: dict[str, list[Any]] = field(default_factory=dict)
    updates: int = 0

    @staticmethod
    def _key_of(key: Sequence[Any] | None, values: Sequence[Any]) -> str:
        return to_json(list(key)) if key is not None else to_json(list(values))

    def apply(self, values: Sequence[Any], op: str | None, key: Sequence[Any] | None) -> None:
        """Apply one change: ``delete`` drops the key, ``insert``/``upsert``/none replace the row."""
        self.updates += 1
        k = self._key_of(key, values)
        if op == "delete":
            self.rows.pop(k, None)
        else:
            self.rows[k] = list(values)

    def render(self, max_rows: int | None = None) -> list[str]:
        """The current table as lines; beyond ``max_rows`` a last line says how many keys are hidden."""
        rows = list(self.rows.values())
        hidden = 0
        if max_rows is not None and len(rows) > max_rows:
            hidden = len(rows) - max_rows
            rows = rows[:max_rows]
        lines = render_table(self.columns, rows).split("\n")
        if not rows:
            lines.append("(no rows yet)")
        if hidden:
            lines.append(f"… {hidden} more keys")
        return lines


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ErrorInfo:
    """What :func:`format_error` needs from an error (duck-typed from ``client.VeloError``)."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    expected: Sequence[str] = ()


def format_error(err: Any, sql: str | None = None, *, color: bool = False, line_offset: int = 0) -> str:
    """``ERROR code: message`` and, when the error has a position, the line with a caret under it.

    ``line_offset`` shifts the shown line number (a statement starting on line 12 of a file).
    """
    code = getattr(err, "code", "error")
    message = getattr(err, "message", str(err))
    line = getattr(err, "line", None)
    column = getattr(err, "column", None)
    expected = list(getattr(err, "expected", None) or [])
    out = [red(f"ERROR {code}: {message}", color)]
    if sql is not None and line is not None:
        src_lines = sql.split("\n")
        if 1 <= line <= len(src_lines):
            text = src_lines[line - 1].replace("\t", " ")
            number = str(line + line_offset)
            gutter = " " * len(number)
            out.append(f"{number} | {text}")
            if column is not None and column >= 1:
                # Column is 1-based in characters; pad by display width so wide chars keep the caret honest.
                lead = display_width(text[: column - 1])
                out.append(f"{gutter} | " + " " * lead + red("^", color))
    if expected:
        # Punctuation is quoted so "expected: FROM, ','" stays readable.
        shown = [e if any(ch.isalnum() for ch in e) else f"'{e}'" for e in expected]
        out.append(red("expected: " + ", ".join(shown), color))
    return "\n".join(out)


# --------------------------------------------------------------------------- admin views

JOB_COLUMNS = ["name", "state", "app", "source", "sink", "records_in", "records_out", "failed", "started_at"]


def job_row(job: dict[str, Any]) -> list[Any]:
    m = job.get("metrics") or {}
    return [
        job.get("name"),
        job.get("state"),
        job.get("app"),
        job.get("source"),
        job.get("sink"),
        m.get("records_in"),
        m.get("records_out"),
        m.get("records_failed"),
        job.get("started_at"),
    ]


def job_detail(job: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One job as ``field | value`` rows (for ``status JOB`` and ``\\jobs NAME``)."""
    m = job.get("metrics") or {}
    fields: list[tuple[str, Any]] = [
        ("name", job.get("name")),
        ("state", job.get("state")),
        ("app", job.get("app")),
        ("version", job.get("version")),
        ("source", job.get("source")),
        ("sink", job.get("sink")),
        ("created_at", job.get("created_at")),
        ("started_at", job.get("started_at")),
        ("records_in", m.get("records_in")),
        ("records_out", m.get("records_out")),
        ("records_failed", m.get("records_failed")),
        ("error", job.get("error")),
        ("properties", job.get("properties") or {}),
        ("sql", job.get("sql")),
    ]
    known = {f for f, _ in fields} | {"metrics", "history"}
    fields += [(k, v) for k, v in job.items() if k not in known]
    return ["field", "value"], [[k, v] for k, v in fields]


def job_history(job: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    hist = job.get("history") or []
    return ["at", "state", "reason"], [
        [h.get("at"), h.get("state"), h.get("reason")] for h in hist if isinstance(h, dict)
    ]


def health_rows(health: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    jobs = health.get("jobs") or {}
    kafka = health.get("kafka") or {}
    rows: list[list[Any]] = [
        ["status", health.get("status")],
        ["version", health.get("version")],
        ["uptime_s", health.get("uptime_s")],
    ]
    rows += [[f"jobs.{k}", v] for k, v in jobs.items()]
    rows += [[f"kafka.{k}", v] for k, v in kafka.items()]
    return ["field", "value"], rows


def topic_rows(topics: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for t in topics:
        offsets = t.get("end_offsets")
        total = (
            sum(v for v in offsets.values() if isinstance(v, int))
            if isinstance(offsets, dict)
            else (sum(v for v in offsets if isinstance(v, int)) if isinstance(offsets, list) else offsets)
        )
        rows.append([t.get("name"), t.get("partitions"), total])
    return ["name", "partitions", "end_offsets"], rows

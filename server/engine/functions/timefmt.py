"""Java ``DateTimeFormatter`` patterns (the ones ksqlDB's time functions take), formatting and parsing.

ksqlDB's FORMAT_TIMESTAMP, PARSE_TIMESTAMP, TIMESTAMPTOSTRING and STRINGTOTIMESTAMP take Java patterns
(``yyyy-MM-dd'T'HH:mm:ss.SSSX``); ``strftime`` cannot express them (no unpadded fields, no
millisecond field, quoted literals), so a pattern is split into tokens once (cached) and each
token formats or parses its own field. Letters outside the supported set are an error naming the
letter rather than a silently wrong result.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_LETTERS = set("yuMLdHhmsSaEDXxZzk")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Token = tuple[str, int | str]  # ("lit", text) or (letter, count)


@lru_cache(maxsize=256)
def tokens(pattern: str) -> tuple[Token, ...]:
    """The tokens of a Java pattern: runs of one letter, and literals (quoted with ', '' is a quote)."""
    out: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            j = i + 1
            text = []
            closed = False
            while j < n:
                if pattern[j] == "'":
                    if j + 1 < n and pattern[j + 1] == "'":
                        text.append("'")
                        j += 2
                        continue
                    closed = True
                    break
                text.append(pattern[j])
                j += 1
            if not closed:
                raise ValueError(f"unterminated quote in time pattern {pattern!r}")
            out.append(("lit", "'" if j == i + 1 else "".join(text)))  # '' alone is a quote
            i = j + 1
        elif c.isalpha():
            if c not in _LETTERS:
                raise ValueError(f"time pattern letter {c!r} is not supported (in {pattern!r})")
            j = i
            while j < n and pattern[j] == c:
                j += 1
            out.append((c, j - i))
            i = j
        else:
            out.append(("lit", c))
            i += 1
    return tuple(out)


def zone(name: str | None) -> tzinfo:
    """The time zone called ``name`` (an IANA name, ``UTC`` or an offset such as ``+02:00``)."""
    if name is None or name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?", name)
    if m:
        delta = timedelta(hours=int(m[2]), minutes=int(m[3] or 0))
        return timezone(-delta if m[1] == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _offset(dt: datetime, letter: str, count: int) -> str:
    off = dt.utcoffset() or timedelta(0)
    if letter == "X" and not off:
        return "Z"
    total = int(off.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    h, m = divmod(abs(total), 60)
    if letter == "Z":
        return f"{sign}{h:02d}{m:02d}"
    if count == 1:
        return f"{sign}{h:02d}" + (f"{m:02d}" if m else "")
    return f"{sign}{h:02d}{':' if count >= 3 else ''}{m:02d}"


def format_ms(ms: int, pattern: str, tz: str | None = None) -> str:
    """Milliseconds since the epoch formatted with a Java pattern in time zone ``tz`` (default UTC)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000).astimezone(zone(tz))
    out = []
    for kind, arg in tokens(pattern):
        if kind == "lit":
            out.append(str(arg))
            continue
        n = int(arg)
        if kind in "yu":
            out.append(f"{dt.year % 100:02d}" if n == 2 else f"{dt.year:0{n}d}")
        elif kind in "ML":
            out.append(_MONTHS[dt.month - 1][:3] if n == 3 else _MONTHS[dt.month - 1] if n > 3
                       else f"{dt.month:0{n}d}")
        elif kind == "d":
            out.append(f"{dt.day:0{n}d}")
        elif kind == "D":
            out.append(f"{dt.timetuple().tm_yday:0{n}d}")
        elif kind == "H":
            out.append(f"{dt.hour:0{n}d}")
        elif kind == "k":
            out.append(f"{dt.hour or 24:0{n}d}")
        elif kind == "h":
            out.append(f"{(dt.hour % 12) or 12:0{n}d}")
        elif kind == "m":
            out.append(f"{dt.minute:0{n}d}")
        elif kind == "s":
            out.append(f"{dt.second:0{n}d}")
        elif kind == "S":
            out.append(f"{dt.microsecond:06d}"[:n].ljust(n, "0"))
        elif kind == "a":
            out.append("AM" if dt.hour < 12 else "PM")
        elif kind == "E":
            out.append(_DAYS[dt.weekday()] if n >= 4 else _DAYS[dt.weekday()][:3])
        elif kind in "XxZ":
            out.append(_offset(dt, kind, n))
        elif kind == "z":
            out.append(dt.tzname() or "UTC")
    return "".join(out)


@lru_cache(maxsize=256)
def _parser(pattern: str) -> re.Pattern[str]:
    parts = []
    seen: set[str] = set()
    for kind, arg in tokens(pattern):
        if kind == "lit":
            parts.append(re.escape(str(arg)))
            continue
        n = int(arg)
        name = {"u": "y", "L": "M", "k": "H", "x": "X", "Z": "X"}.get(kind, kind)
        if name in seen:  # a field written twice must parse the same text; match it without a group
            name = ""
        seen.add(name)
        if kind in "yu":
            rx = r"\d{2}" if n == 2 else r"\d{4,9}" if n == 4 else rf"\d{{{n},9}}"
        elif kind in "ML" and n >= 3:
            rx = r"[A-Za-z]{3}" if n == 3 else r"[A-Za-z]+"
        elif kind == "S":
            rx = rf"\d{{{n}}}"
        elif kind == "a":
            rx = r"(?i:AM|PM)"
        elif kind == "E":
            rx = r"[A-Za-z]+"
        elif kind in "XxZ":
            rx = r"Z|[+-]\d{2}(?::?\d{2})?"
        elif kind == "z":
            rx = r"[A-Za-z_/+\-0-9]+"
        else:
            rx = r"\d{1,3}" if n == 1 else rf"\d{{{n}}}"
        parts.append(f"(?P<{name}>{rx})" if name else f"(?:{rx})")
    return re.compile("".join(parts))


def parse_ms(text: str, pattern: str, tz: str | None = None) -> int:
    """The milliseconds since the epoch that ``text`` (written with a Java pattern) denotes.

    Fields the pattern lacks default to 1970-01-01 00:00:00.000; the time zone is the text's own
    offset or zone when the pattern has one, else ``tz`` (default UTC).
    """
    m = _parser(pattern).fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} does not match the time pattern {pattern!r}")
    g = m.groupdict()
    year = int(g["y"]) + (2000 if len(g["y"] or "") == 2 else 0) if g.get("y") else 1970
    month = 1
    if g.get("M"):
        raw = g["M"]
        if raw.isdigit():
            month = int(raw)
        else:
            names = [x.lower() for x in _MONTHS]
            key = raw.lower()
            month = next((i + 1 for i, x in enumerate(names) if x == key or x[:3] == key), 0)
            if not month:
                raise ValueError(f"unknown month {raw!r}")
    hour = int(g.get("H") or g.get("h") or 0)
    if g.get("h") and g.get("a"):
        hour = hour % 12 + (12 if g["a"].upper() == "PM" else 0)
    if hour == 24 and "k" in {k for k, _ in tokens(pattern)}:
        hour = 0
    frac = g.get("S") or "0"
    micro = int(frac.ljust(6, "0")[:6])
    if g.get("D") and not g.get("M") and not g.get("d"):
        base = datetime(year, 1, 1) + timedelta(days=int(g["D"]) - 1)
        month, day = base.month, base.day
    else:
        day = int(g.get("d") or 1)
    tzi: tzinfo
    if g.get("X"):
        tzi = UTC if g["X"] == "Z" else zone(g["X"])
    elif g.get("z"):
        tzi = zone(g["z"])
    else:
        tzi = zone(tz)
    dt = datetime(year, month, day, hour, int(g.get("m") or 0), int(g.get("s") or 0), micro, tzinfo=tzi)
    return (dt - _EPOCH) // timedelta(milliseconds=1)  # exact, also before 1970

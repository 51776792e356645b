"""20,000 generated and mutated inputs: parse() returns or raises a SqlError — nothing else, fast.

Inputs are valid statements cut, spliced, shuffled and sprinkled with keywords, punctuation,
quotes and comment markers, plus random characters; each is at most 2,000 characters long, and
each parse must finish well within a second (the parser is linear, iterative, and never retries
more than once).
"""

from __future__ import annotations

import random
import time

from velo.grammar import SqlError, parse

from .test_errors import ERRORS
from .test_statements import EXAMPLES

CORPUS = [s for s in EXAMPLES.split(";") if s.strip()] + [sql for sql, *_ in ERRORS] + [
    "SELECT DISTINCT a, t.*, CASE WHEN x IS NOT NULL THEN 'y' ELSE 'n' END FROM s t "
    "JOIN u ON t.k = u.k WITHIN 10s WHERE a NOT IN (SELECT k FROM r) GROUP BY a "
    "WINDOW HOPPING (ts, 1m, 10s) GRACE PERIOD 5 SECONDS HAVING COUNT(*) > 1 EMIT CHANGES LIMIT 3",
    "INSERT INTO t (a, b) VALUES (1, 'x'), (-2.5e3, NULL)",
    "CREATE TABLE x (m MAP<STRING, ARRAY<STRUCT<a INT, \"B\" DECIMAL(9, 2)>>> PRIMARY KEY) "
    "WITH (KAFKA_TOPIC = 'x')",
    "PRINT 'topic' FROM BEGINNING INTERVAL 2 LIMIT 10; SHOW METRICS j; DESCRIBE FUNCTION lag",
    "SELECT LAG(p, 1) OVER (PARTITION BY s ORDER BY ts DESC ROWS BETWEEN 3 PRECEDING AND CURRENT ROW),"
    " EXTRACT(YEAR FROM ts), POSITION('a' IN s), ARRAY[1, 2][1], m['k'], a::BIGINT, "
    "CAST(x AS DOUBLE), CURRENT_TIMESTAMP, ts - INTERVAL '5 seconds' FROM s",
    "SET 'a.b' = 'c'; UNSET 'a.b'; EXPLAIN SELECT 1 FROM t; STOP JOB j FORCE; TERMINATE j",
    # ksqlDB's forms: implicit aliases, ->, LIKE … ESCAPE, WITHIN … GRACE PERIOD / (before, after)
    "SELECT EXP(i) i, s1.name name1, s->a->b f, x NOT LIKE 'a!%' ESCAPE '!' AS l FROM s s1 "
    "JOIN u WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 5s ON s1.k = u.k PARTITION BY s1.k EMIT CHANGES",
    "SELECT a FROM t JOIN u ON t.k = u.k WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE",
    # query shapes: derived tables, CTEs, UNION ALL
    "WITH a AS (SELECT x FROM t), b AS (SELECT y FROM u) SELECT x FROM a UNION ALL SELECT y FROM b "
    "UNION ALL SELECT z FROM (SELECT z FROM v) AS w EMIT CHANGES LIMIT 3 WITH ('k' = 'v')",
    "CREATE STREAM s AS WITH a AS (SELECT x FROM t) SELECT x FROM a JOIN (SELECT k FROM r) q ON a.x = q.k; "
    "INSERT INTO s WITH a AS (SELECT x FROM t) SELECT x FROM a",
]
SPICE = [
    "SELECT", "FROM", "WHERE", "(", ")", ",", ";", "'", '"', "`", "--", "/*", "*/", "*", ".",
    "::", "[", "]", "AND", "NOT", "IN", "BETWEEN", "CASE", "END", "WINDOW", "TUMBLING", "5s",
    "INTERVAL", "'x'", "1e", "${V}", "\n", "OVER", "PRIMARY KEY", "WITH", "=", "<>", "||", "é", "\x00",
    "->", "UNION ALL", "ESCAPE", "PARTITION BY", "GRACE PERIOD",
]  # fmt: skip
MAX_LEN = 2000


def _mutate(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        i = rng.randrange(len(words)) if words else 0
        if op == 0 and words:
            del words[i]
        elif op == 1:
            words.insert(i, rng.choice(SPICE))
        elif op == 2 and len(words) > 1:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif op == 3 and words:
            w = words[i]
            k = rng.randrange(len(w) + 1)
            words[i] = w[:k] + rng.choice(SPICE) + w[k:]
        elif op == 4:
            words = words[: rng.randrange(len(words) + 1)]
        elif op == 5:
            words += rng.choice(CORPUS).split(" ")[: rng.randrange(8)]
        else:
            words.insert(i, "".join(chr(rng.randrange(32, 0x250)) for _ in range(rng.randrange(1, 6))))
    return " ".join(words)[:MAX_LEN]


def _inputs(n: int, seed: int = 20240611) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        kind = rng.randrange(10)
        if kind == 0:  # pure noise
            out.append("".join(rng.choice(SPICE + list("abc 0123;'\"()")) for _ in range(rng.randrange(40))))
        else:
            out.append(_mutate(rng, rng.choice(CORPUS)))
    return out


def test_twenty_thousand_inputs_raise_only_sql_errors_and_never_hang() -> None:
    inputs = _inputs(20_000)
    outcomes = {"parsed": 0, "error": 0}
    slowest = 0.0
    for text in inputs:
        start = time.perf_counter()
        try:
            parse(text)
            outcomes["parsed"] += 1
        except SqlError as exc:
            assert exc.message and (exc.line is None or exc.line >= 1), text
            outcomes["error"] += 1
        except BaseException as exc:  # anything else is a bug: show the input
            raise AssertionError(f"{type(exc).__name__} escaped parse() for {text!r}") from exc
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 1.0
    assert outcomes["parsed"] > 100 and outcomes["error"] > 10_000  # both paths were exercised


def test_errors_point_inside_the_text() -> None:
    for text in _inputs(2_000, seed=7):
        try:
            parse(text)
        except SqlError as exc:
            assert exc.line is not None and exc.column is not None, text
            assert 1 <= exc.line <= text.count("\n") + 1, text

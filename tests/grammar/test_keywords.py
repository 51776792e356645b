"""The exported word lists agree with the grammar and with dialect.md section 8."""

from __future__ import annotations

from velo.grammar import FUNCTION_NAMES, KEYWORDS
from velo.grammar.keywords import RESERVED
from velo.grammar.parser import TABLES

SECTION_8 = """
COUNT SUM AVG MIN MAX FIRST_VALUE LAST_VALUE STDDEV STDDEV_SAMP STDDEV_POP VARIANCE VAR_SAMP VAR_POP
MEDIAN PERCENTILE_CONT APPROX_COUNT_DISTINCT LISTAGG STRING_AGG COLLECT_LIST ABS ROUND CEIL CEILING
FLOOR SQRT POWER POW MOD EXP LN LOG10 SIGN LEAST GREATEST RANDOM UPPER LOWER LENGTH SUBSTRING REPLACE
TRIM LTRIM RTRIM CONCAT SPLIT SPLIT_PART LEFT RIGHT POSITION REGEXP_MATCH REGEXP_EXTRACT
REGEXP_REPLACE LPAD RPAD NOW CURRENT_TIMESTAMP TIMESTAMP EXTRACT DATE_FORMAT FROM_UNIXTIME
UNIX_TIMESTAMP TUMBLE_START TUMBLE_END DATEDIFF COALESCE NULLIF IF CAST JSON_EXTRACT JSON_VALUE ARRAY
ARRAY_LENGTH ARRAY_CONTAINS MAP_KEYS MAP_VALUES HEADER HAS_HEADER HEADER_KEYS LAG ROW_NUMBER RANK
DENSE_RANK
"""


def test_keywords_are_exactly_the_grammars() -> None:
    assert set(TABLES.keywords.values()) == set(KEYWORDS)
    assert RESERVED <= KEYWORDS


def test_function_names_cover_section_8() -> None:
    """FUNCTION_NAMES (the shell's highlighting and completion) is the server's function registry,
    name for name, and holds every function dialect.md section 8 lists."""
    from velo.server.engine.functions import all_functions

    registry = {f.name for f in all_functions()}
    only_grammar = sorted(FUNCTION_NAMES - registry)
    only_registry = sorted(registry - FUNCTION_NAMES)
    assert not only_grammar, f"in velo.grammar.FUNCTION_NAMES but not in the server's registry: {only_grammar}"
    assert not only_registry, f"in the server's registry but not in velo.grammar.FUNCTION_NAMES: {only_registry}"
    missing = sorted(set(SECTION_8.split()) - FUNCTION_NAMES)
    assert not missing, f"dialect.md section 8 functions missing from FUNCTION_NAMES: {missing}"
    assert all(name == name.upper() for name in FUNCTION_NAMES | KEYWORDS)

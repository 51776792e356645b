"""The parse-table cache is keyed on the installed Lark's version: an upgrade never reuses stale tables."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import lark
import pytest
from velo.grammar import parser
from velo.grammar.parser import GRAMMAR_PATH, cache_key, lark_version, load_tables


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the times Lark builds the tables (a cache miss), by the grammar it was given."""
    calls: list[str] = []
    real = parser._build_raw

    def counting(grammar: str) -> dict[str, Any]:
        calls.append(grammar)
        return real(grammar)

    monkeypatch.setattr(parser, "_build_raw", counting)
    return calls


def _cached(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_bytes()) for p in sorted(folder.glob("velo-grammar-*.json"))}


def test_the_version_is_the_installed_larks() -> None:
    assert lark_version() == lark.__version__ == importlib.metadata.version("lark")


def test_another_lark_version_misses_the_cache_and_rebuilds(tmp_path: Path, builds: list[str]) -> None:
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    first = load_tables(lark="1.2.2", cache_dirs=[tmp_path])
    assert len(builds) == 1
    name_1 = f"velo-grammar-{cache_key(grammar, '1.2.2')}.json"
    assert list(_cached(tmp_path)) == [name_1]
    assert _cached(tmp_path)[name_1]["lark"] == "1.2.2"

    again = load_tables(lark="1.2.2", cache_dirs=[tmp_path])  # same Lark: a hit, no build
    assert len(builds) == 1
    assert again.rows == first.rows

    load_tables(lark="1.3.0", cache_dirs=[tmp_path])  # an upgrade: a miss, built and cached apart
    assert len(builds) == 2
    name_2 = f"velo-grammar-{cache_key(grammar, '1.3.0')}.json"
    assert name_2 != name_1
    assert sorted(_cached(tmp_path)) == sorted([name_1, name_2])
    assert _cached(tmp_path)[name_2]["lark"] == "1.3.0"


def test_a_file_written_for_another_lark_is_not_used_even_under_the_right_name(
    tmp_path: Path, builds: list[str]
) -> None:
    grammar = GRAMMAR_PATH.read_text(encoding="utf-8")
    load_tables(lark="1.2.2", cache_dirs=[tmp_path])
    stale = tmp_path / f"velo-grammar-{cache_key(grammar, '1.2.2')}.json"
    # a copy under the name the next version looks for, but recording the Lark that built it
    stale.rename(tmp_path / f"velo-grammar-{cache_key(grammar, '9.9')}.json")
    load_tables(lark="9.9", cache_dirs=[tmp_path])
    assert len(builds) == 2
    assert _cached(tmp_path)[f"velo-grammar-{cache_key(grammar, '9.9')}.json"]["lark"] == "9.9"


def test_a_warm_import_still_imports_neither_lark_nor_importlib_metadata() -> None:
    code = (
        "import sys, velo.grammar; velo.grammar.parse('SELECT a FROM t'); "
        "print(sorted({'lark', 'importlib.metadata'} & set(sys.modules)))"
    )
    subprocess.run([sys.executable, "-c", "import velo.grammar"], check=True)  # warms the cache
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"

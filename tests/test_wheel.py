"""The wheel, installed the normal way: built from the sources, installed into a fresh venv (not
editable, dependencies resolved by pip), where every module of ``velo`` imports and both commands run.

The editable install the rest of the suite uses reads the source folders directly, so a package
left out of the wheel (once ``velo.server.engine.compiler``) or a data file left out of it (the
grammar, ``py.typed``) shows only here. The build runs on a copy of the build inputs in
``tmp_path`` — setuptools writes ``build/`` and ``*.egg-info`` next to the sources — and the
venv lives there too: nothing is left in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# source folder -> the package it installs as (pyproject.toml's package-dir mapping)
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
BUILD_FILES = ("pyproject.toml", "setup.py", PYPROJECT["project"]["readme"])
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")
TIMEOUT_S = 240

# Run by the venv's interpreter (-I: neither the repository nor PYTHONPATH is on sys.path): walks
# the installed package with pkgutil, imports every module, parses a statement (the grammar's
# tables are built by the Lark that pip installed) and reports what it found, as JSON.
CHECK = """
import importlib, json, pkgutil, sys, sysconfig, traceback
import velo

failed = {}
def onerror(name):
    failed[name] = traceback.format_exc()

names = sorted(m.name for m in pkgutil.walk_packages(velo.__path__, "velo.", onerror=onerror))
files = {}
for name in names:
    try:
        files[name] = importlib.import_module(name).__file__
    except BaseException:
        failed[name] = traceback.format_exc()
from velo.grammar import parse
statement = type(parse("SELECT a FROM t WHERE b > 1")[0]).__name__
json.dump({"modules": names, "files": files, "failed": failed, "statement": statement,
           "purelib": sysconfig.get_paths()["purelib"]}, sys.stdout)
"""


def _run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs a build or install step; a failure shows its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _source_modules() -> set[str]:
    """Every module the source folders hold, by the name it installs as."""
    found = set()
    for package, folder in PACKAGE_DIR.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.add(".".join((package, *parts)))
    return found


def _source_data() -> set[str]:
    """Every file of the source folders that is not Python (grammar, markers), as installed paths."""
    found = set()
    for package, folder in PACKAGE_DIR.items():
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder)
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in rel.parts:
                found.add("/".join((*package.split("."), *rel.parts)))
    return found


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_where_every_module_imports_and_both_commands_run(
    tmp_path: Path,
) -> None:
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    src.mkdir()
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, src / name)
    for folder in PACKAGE_DIR.values():
        shutil.copytree(ROOT / folder, src / folder, ignore=SKIP)

    # the normal build: an isolated build environment with the build-system requirements
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, src], tmp_path)
    wheels = sorted(dist.glob("velo-*.whl"))
    assert len(wheels) == 1, wheels
    # no pip inside the venv (ensurepip would double the time): this pip installs into it
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-input", wheels[0]], tmp_path)

    found = json.loads(_run([python, "-I", "-c", CHECK], tmp_path).stdout)
    expected = _source_modules()
    installed = set(found["modules"])
    assert not expected - installed, f"modules missing from the wheel: {sorted(expected - installed)}"
    assert not installed - expected, f"modules in the wheel but not in the sources: {sorted(installed - expected)}"
    assert not found["failed"], "modules that do not import from the wheel:\n" + "\n".join(
        f"{name}:\n{error}" for name, error in found["failed"].items()
    )
    purelib = Path(found["purelib"])
    outside = {name: file for name, file in found["files"].items() if not Path(file).is_relative_to(purelib)}
    assert not outside, f"modules imported from outside the venv: {outside}"
    assert found["statement"] == "Select"
    missing_data = {rel for rel in _source_data() if not (purelib / rel).is_file()}
    assert not missing_data, f"data files missing from the wheel: {sorted(missing_data)}"

    for command in ("velo-server", "velo-cli"):
        proc = _run([venv / "bin" / command, "--help"], tmp_path)
        assert proc.stdout.startswith(f"Usage: {command} "), proc.stdout
        assert not proc.stderr, proc.stderr

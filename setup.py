"""Build script: finds the packages under pyproject.toml's package-dir mapping (everything else is there).

The source folders install under other names (``grammar/`` is ``velo.grammar``), which
``[tool.setuptools.packages.find]`` cannot express: it names what it finds after the folder.
So the subpackages are found here, under each mapped folder, and named after the mapping — a
package added to the tree is in the wheel without anyone listing it (a hand-written list once
left out ``velo.server.engine.compiler``). tests/test_wheel.py builds and installs the wheel.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "setuptools"
]["package-dir"]


def packages() -> list[str]:
    """Every package of the wheel: each mapped folder and every package folder below it."""
    found = []
    for name, folder in PACKAGE_DIR.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(str(ROOT / folder))]
    return sorted(found)


setup(packages=packages())

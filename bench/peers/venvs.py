"""Each peer in its own virtual environment, installed by package name with pip (never a project dependency).

The environments live in ``bench/.venvs/<peer>/`` (ignored by git, reused by later runs): one is
(re)installed when its marker file does not list exactly the requirements below. Versions are
pinned to the newest that installed on Python 3.11 when the bench was written, so a run can be
repeated; change them here.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

VENVS_DIR = Path(__file__).resolve().parent.parent / ".venvs"

# peer → (distribution whose version is reported, pip requirements)
PEERS: dict[str, tuple[str, list[str]]] = {
    "bytewax": ("bytewax", ["bytewax[kafka]==0.21.1", "orjson"]),
    "quixstreams": ("quixstreams", ["quixstreams==3.28.1"]),
    "pathway": ("pathway", ["pathway==0.33.0"]),
}


@dataclass
class PeerEnv:
    """An installed peer (``python`` set) or the reason it could not be installed (``error`` set)."""

    name: str
    python: Path | None
    version: str | None
    error: str | None = None


def ensure(name: str) -> PeerEnv:
    """Create or reuse the peer's environment; never raises (an install failure is a result)."""
    dist, reqs = PEERS[name]
    home = VENVS_DIR / name
    python = home / "bin" / "python"
    marker = home / ".bench-requirements"
    wanted = "\n".join(reqs)
    try:
        if not (python.exists() and marker.exists() and marker.read_text() == wanted):
            print(f"installing {name} into {home} ({', '.join(reqs)}) …", flush=True)
            if not python.exists():
                venv.EnvBuilder(with_pip=True).create(home)
            proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                   *reqs], capture_output=True, text=True)
            if proc.returncode != 0:
                return PeerEnv(name, None, None, f"pip install failed: {_tail(proc.stderr or proc.stdout)}")
            marker.write_text(wanted)
        proc = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return PeerEnv(name, None, None, f"installed but not importable: {_tail(proc.stderr)}")
        return PeerEnv(name, python, proc.stdout.strip())
    except OSError as exc:
        return PeerEnv(name, None, None, f"could not create the environment: {exc}")


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if "WARNING" not in line]
    return " | ".join(kept[-lines:]) or "(no output)"


if __name__ == "__main__":
    for peer in sys.argv[1:] or list(PEERS):
        print(ensure(peer))

"""``python -m bench.peers``: run the side-by-side peer benchmark (see harness.py)."""

from bench.peers.harness import main

main()

"""Side-by-side benchmark of Velo against other Python stream processors (``python -m bench.peers``)."""

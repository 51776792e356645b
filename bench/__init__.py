"""Velo's benchmarks: each reports a ratio against a hand-written aiokafka loop on the same broker."""

"""The sink's murmur2 gives the same partitions as aiokafka's (Kafka's default partitioner)."""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2 as reference
from velo.server.connectors.murmur import murmur2


def test_murmur2_matches_aiokafka_for_every_length_and_random_bytes() -> None:
    rnd = random.Random(11)
    keys = [b"", b"a", b"AAPL", b"AAPL|1700000000000", "ключ|ü".encode(), bytes(range(256))]
    keys += [rnd.randbytes(n) for n in range(0, 70) for _ in range(20)]
    for key in keys:
        assert murmur2(key) == reference(key), key

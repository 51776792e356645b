"""MergedSource: inputs read in turn, table inputs first read alone up to where they stood at start."""

from __future__ import annotations

from velo.server.connectors.base import Batch, Record
from velo.server.connectors.memory import MemorySource, MergedSource


class TableSource(MemorySource):
    """An unbounded in-memory table: loaded once it has handed out its first ``load`` records."""

    def __init__(self, records: list[Record], load: int) -> None:
        super().__init__(records, bounded=False)
        self._load = load

    async def loaded(self) -> bool:
        return self._pos >= self._load


def _records(topic: str, n: int) -> list[Record]:
    return [Record(b"{}", offset=i, topic=topic) for i in range(n)]


async def _read_all(source: MergedSource, reads: int) -> list[tuple[int, Batch]]:
    out = []
    for _ in range(reads):
        batch = await source.read(1, 2)
        if batch.records:
            out.append((source.last_index, batch))
    return out


async def test_tables_are_read_to_their_start_end_before_any_stream() -> None:
    stream = MemorySource(_records("s", 6), bounded=False)
    table_a, table_b = TableSource(_records("a", 5), load=3), TableSource(_records("b", 2), load=2)
    merged = MergedSource([stream, table_a, table_b], tables=[1, 2])
    batches = await _read_all(merged, 12)
    order = [i for i, _ in batches]
    # Two-record batches: table a needs two reads to pass its third record, table b one; then all in turn.
    assert order[:3] == [1, 2, 1]
    assert sorted(order[3:]) == [0, 0, 0, 1]
    # A table's batches carry no offsets: it is read whole at every start, there is nothing to commit.
    assert all(not b.offsets for i, b in batches if i > 0)
    assert all(b.offsets for i, b in batches if i == 0)


async def test_without_tables_inputs_are_read_in_turn() -> None:
    merged = MergedSource([MemorySource(_records("s", 4)), MemorySource(_records("t", 4))])
    assert [i for i, _ in await _read_all(merged, 4)] == [0, 1, 0, 1]


async def test_progress_names_each_streams_partitions_under_its_input_and_leaves_tables_out() -> None:
    def records(topic: str, parts: list[int]) -> list[Record]:
        return [Record(b"{}", offset=i, topic=topic, partition=p) for i, p in enumerate(parts)]

    stream = MemorySource(records("s", [0, 1, 0]), bounded=False)
    other = MemorySource(records("o", [2]), bounded=False)
    table = TableSource(records("t", [0, 5]), load=0)
    merged = MergedSource([stream, other, table], tables=[2])
    progress = merged.progress()
    assert progress is not None
    assert progress.partitions == {(0, 0), (0, 1), (1, 2)}  # the table's partitions move no watermark
    assert progress.behind == progress.partitions  # nothing handed out yet
    await merged.read(1, 2)  # stream: partitions 0 and 1's records; partition 0 has one more
    await merged.read(1, 2)  # other: its one record
    progress = merged.progress()
    assert progress is not None and progress.behind == {(0, 0)}

"""The filter/project family: the tree's Filter and Project over one Scan, fused into one function per batch.

Two variants are generated: ``encode`` (Kafka key and value for a sink, JSON or the sink's encoder;
``SELECT *`` from JSON to JSON forwards the record's bytes untouched) and ``rows`` (``RowEvent``s for
a client).
"""

from __future__ import annotations

from ..plan import Filter, OutputColumn, Project
from ..processor import Mode, Processor
from .base import QueryBase
from .codegen import decode_lines, encode_output, loop
from .model import CompiledQuery
from .processors import StatelessProcessor


class FilterProjectPlanner(QueryBase):
    """Lowers ``Sink(Project(Filter?(Scan)))``: a SELECT without aggregation, join or OVER."""

    def _filter_project(self) -> CompiledQuery:
        cg = self.cg
        assert self.tree is not None
        project = self.tree.child
        assert isinstance(project, Project)
        filt = project.child if isinstance(project.child, Filter) else None
        rel = self.relations[0]
        direct = self._access({0: "r"}, direct=True)
        ec = cg.compiler(direct)
        self._current = ec
        need_et = "_event_time" in self._needed_system()
        decode = decode_lines(cg, rel, need_et, set())
        if filt is not None:
            decode.append(f"if not {ec.predicate(filt.condition)}: continue")
        ec.substitute = self._alias_substitute(self._allowed)
        star = bool(project.star_of)
        values = []
        self._allowed.clear()
        for name, e in project.items:
            values.append((name, ec.compile(e)))
            if name in self.aliases:
                self._allowed.add(name)
        names, types = project.names, list(project.item_types)
        pk = self._primary_key(names)
        ts_cols = [n for n, ty in zip(names, types, strict=True) if ty == "TIMESTAMP"]
        encoder = self._sink_encoder(None if star else list(zip(names, types, strict=True)))
        if star and not values and encoder is not None:
            encode_body = [*decode, f"append((m.key, {cg.bind(encoder, '_venc')}(r)))"]
        elif star and not values:
            encode_body = [*decode, "append((m.key, m.value))" if rel.spec.format == "json" and not rel.types
                           else "append((m.key, _dumps(r)))"]
        else:
            fields = ", ".join(f"{n!r}: {c}" for n, c in values)
            obj = f"{{**r, {fields}}}" if star else f"{{{fields}}}"
            encode_body = [*decode, f"o = {obj}", *encode_output(cg, names, ts_cols, pk, encoder)]
        rows_body = [*decode, f"append(RowEvent([{', '.join(c for _, c in values)}]))"]
        cg.add(loop(encode_body, "encode"))
        cg.add(loop(rows_body, "rows"))
        ns = cg.build(rel.spec.topic)
        columns = [OutputColumn(n, ty) for n, ty in zip(names, types, strict=True)]
        plan = self._plan("filter_project", columns, "none" if self.select.emit is None else self.select.emit)
        encode, rows = ns["encode"], ns["rows"]

        def factory(mode: Mode) -> Processor:
            return StatelessProcessor(encode if mode == "encode" else rows)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

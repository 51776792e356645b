"""The filter/project family: WHERE and the select list fused into one function per batch.

Two variants are generated: ``encode`` (Kafka key and value for a sink, JSON or the sink's encoder;
``SELECT *`` from JSON to JSON forwards the record's bytes untouched) and ``rows`` (``RowEvent``s for
a client).
"""

from __future__ import annotations

from ..expressions import infer_type
from ..plan import OutputColumn
from ..processor import Mode, Processor
from ..types import type_name
from .base import QueryBase
from .codegen import decode_lines, encode_output, loop
from .model import CompiledQuery
from .processors import StatelessProcessor


class FilterProjectPlanner(QueryBase):
    """Compiles a SELECT without aggregation, join or OVER."""

    def _filter_project(self) -> CompiledQuery:
        s, cg = self.select, self.cg
        rel = self.relations[0]
        items = self._items()
        direct = self._access({0: "r"}, direct=True)
        ec = cg.compiler(direct)
        self._current = ec
        need_et = "_event_time" in self._needed_system()
        decode = decode_lines(cg, rel, need_et, set())
        if s.where is not None:
            decode.append(f"if not {ec.predicate(s.where)}: continue")
        ec.substitute = self._alias_substitute(self._allowed)
        star = any(e is None for _, e, _ in items)
        values = []
        self._allowed.clear()
        for name, e, _ in items:
            if e is not None:
                values.append((name, ec.compile(e)))
                if name in self.aliases:
                    self._allowed.add(name)
        types = {name: infer_type(e, self._column_type) for name, e, _ in items if e is not None}
        names = [n for n, _ in values]
        pk = self._primary_key(names)
        ts_cols = [n for n in names if types[n] == "TIMESTAMP"]
        known_star = [c for c in (rel.columns or ()) if c not in names] if star else []
        out_types = [(c, type_name(rel.types[c]) if c in rel.types else "ANY") for c in known_star]
        encoder = self._sink_encoder(None if star and rel.columns is None else
                                     out_types + [(n, types[n]) for n in names])
        if star and not values and encoder is not None:
            encode_body = [*decode, f"append((m.key, {cg.bind(encoder, '_venc')}(r)))"]
        elif star and not values:
            encode_body = [*decode, "append((m.key, m.value))" if rel.spec.format == "json" and not rel.types
                           else "append((m.key, _dumps(r)))"]
        else:
            fields = ", ".join(f"{n!r}: {c}" for n, c in values)
            obj = f"{{**r, {fields}}}" if star else f"{{{fields}}}"
            encode_body = [*decode, f"o = {obj}", *encode_output(cg, names, ts_cols, pk, encoder)]
        row_items = [f"r.get({c!r})" for c in known_star] + [c for _, c in values]
        rows_body = [*decode, f"append(RowEvent([{', '.join(row_items)}]))"]
        cg.add(loop(encode_body, "encode"))
        cg.add(loop(rows_body, "rows"))
        ns = cg.build(rel.spec.topic)
        columns = [OutputColumn(c, type_name(rel.types[c]) if c in rel.types else "ANY") for c in known_star]
        columns += [OutputColumn(n, types[n]) for n in names]
        steps = []
        if s.where is not None:
            steps.append("Filter: WHERE clause")
        steps.append(f"Project: {', '.join(names) or '*'}{' (plus every source column)' if star else ''}")
        plan = self._plan("filter_project", columns, "none" if s.emit is None else s.emit, steps)
        encode, rows = ns["encode"], ns["rows"]

        def factory(mode: Mode) -> Processor:
            return StatelessProcessor(encode if mode == "encode" else rows)

        return CompiledQuery(plan, self._inputs(), cg.source, factory)

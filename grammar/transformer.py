"""From grammar rules to AST nodes: one method per rule (or rule alias) of velo.lark.

The parser calls ``Builder.<rule>(builder, kids, start, end)`` at each LALR reduction, so no parse
tree is ever built. ``kids`` holds every child in order: tokens (``lexer.Token``), AST nodes, ``Part``
tuples for clauses that are not nodes, and None for an empty optional rule; ``start``/``end`` are the
offsets the reduction covers. Structural checks that a grammar cannot express (the window argument
forms, type names, interval strings) raise ``SqlSyntaxError`` here, at the offending position.
"""

from __future__ import annotations

from typing import Any

from . import ast as a
from .lexer import Token
from .transform_base import (
    Kids,
    Part,
    _has,
    _ident,
    _nodes,
    _number,
    _parts,
    _start,
    copy_with,
    make_create_as,
    make_item,
    make_join,
    make_property,
    make_select,
    make_star,
    make_table,
)
from .transform_expr import ExpressionRules

# the values of the keyword constants in WITH (one dict for all calls, not one per call)
_CONSTANTS: dict[str, bool | None] = {"TRUE": True, "FALSE": False, "NULL": None}


class Builder(ExpressionRules):
    """The rule callbacks of velo.lark: statements and SELECT here, the rest inherited."""

    # ------------------------------------------------------------ statement lists

    def start(self, kids: Kids, s: int, e: int) -> list[a.Statement]:
        return _nodes(kids)

    def create_as(self, kids: Kids, s: int, e: int) -> a.CreateStreamAs:
        p = _parts(kids)
        query: a.Select = _nodes(kids)[-1]
        # ksqlDB's ``CREATE STREAM s WITH (...) AS SELECT`` and the trailing ``WITH`` are one set of properties.
        return make_create_as(
            self._lines, s, e, _ident(kids), copy_with(query, properties=()), p["kind"],
            (*p.get("with", ()), *query.properties), p.get("columns", ()), "or_replace" in p,
        )  # fmt: skip

    def create_source(self, kids: Kids, s: int, e: int) -> a.CreateSource:
        p = _parts(kids)
        return a.CreateSource(
            _ident(kids), p["kind"], p.get("columns", ()), p["with"], "or_replace" in p,
            span=self.span(s, e),
        )  # fmt: skip

    def or_replace(self, kids: Kids, s: int, e: int) -> Part:
        return Part("or_replace", True)

    def relation_kind(self, kids: Kids, s: int, e: int) -> Part:
        return Part("kind", kids[0].value.lower())

    def column_defs(self, kids: Kids, s: int, e: int) -> Part:
        return Part("columns", tuple(_nodes(kids)))

    def column_def(self, kids: Kids, s: int, e: int) -> a.ColumnDef:
        key = _parts(kids).get("key")
        return a.ColumnDef(
            _ident(kids), _nodes(kids)[0], key == "KEY", key == "PRIMARY KEY", span=self.span(s, e)
        )

    def key_marker(self, kids: Kids, s: int, e: int) -> Part:
        return Part("key", "KEY" if len(kids) == 1 else "PRIMARY KEY")

    def start_job(self, kids: Kids, s: int, e: int) -> a.StartJob:
        query: a.Select = kids[-1]
        return a.StartJob(
            _ident(kids), copy_with(query, properties=()), query.properties, span=self.span(s, e)
        )

    def insert_select(self, kids: Kids, s: int, e: int) -> a.InsertSelect:
        query: a.Select = kids[-1]
        return a.InsertSelect(
            _ident(kids), copy_with(query, properties=()), query.properties, span=self.span(s, e)
        )

    def insert_values(self, kids: Kids, s: int, e: int) -> a.InsertValues:
        rows = tuple(k.value for k in kids if type(k) is Part and k.tag == "row")
        columns = _parts(kids).get("columns", ())
        for row in rows:
            if columns and len(row) != len(columns):
                raise self.error(
                    f"A row has {len(row)} values for {len(columns)} columns", s, None
                )
        return a.InsertValues(kids[2].value, rows, columns, span=self.span(s, e))

    def ident_list(self, kids: Kids, s: int, e: int) -> Part:
        return Part("columns", tuple(k.value for k in kids if k.type == "IDENT"))

    def row(self, kids: Kids, s: int, e: int) -> Part:
        return Part("row", tuple(_nodes(kids)))

    def drop_stmt(self, kids: Kids, s: int, e: int) -> a.Drop:
        p = _parts(kids)
        return a.Drop(
            _ident(kids), p["kind"], "if_exists" in p, "delete_topic" in p, span=self.span(s, e)
        )

    def if_exists(self, kids: Kids, s: int, e: int) -> Part:
        return Part("if_exists", True)

    def delete_topic(self, kids: Kids, s: int, e: int) -> Part:
        return Part("delete_topic", True)

    # ------------------------------------------------------------ control and inspection

    def print_stmt(self, kids: Kids, s: int, e: int) -> a.Print:
        p = _parts(kids)
        return a.Print(
            kids[1].value, "from_beginning" in p, p.get("interval"), p.get("limit"),
            span=self.span(s, e),
        )  # fmt: skip

    def from_beginning(self, kids: Kids, s: int, e: int) -> Part:
        return Part("from_beginning", True)

    def print_interval(self, kids: Kids, s: int, e: int) -> Part:
        return Part("interval", self._count(kids[1]))

    def stop_job(self, kids: Kids, s: int, e: int) -> a.StopJob:
        return a.StopJob(_ident(kids), _has(kids, "FORCE"), span=self.span(s, e))

    def terminate(self, kids: Kids, s: int, e: int) -> a.StopJob:
        return a.StopJob(_ident(kids), span=self.span(s, e))

    def pause_job(self, kids: Kids, s: int, e: int) -> a.PauseJob:
        return a.PauseJob(_ident(kids), span=self.span(s, e))

    def resume_job(self, kids: Kids, s: int, e: int) -> a.ResumeJob:
        return a.ResumeJob(_ident(kids), span=self.span(s, e))

    def stop_app(self, kids: Kids, s: int, e: int) -> a.StopApp:
        return a.StopApp(_ident(kids), span=self.span(s, e))

    def show_jobs(self, kids: Kids, s: int, e: int) -> a.ShowJobs:
        like = kids[-1].value if kids[-1].type == "STRING" else None
        return a.ShowJobs(like, span=self.span(s, e))

    def show_status(self, kids: Kids, s: int, e: int) -> a.ShowStatus:
        return a.ShowStatus(_ident(kids), span=self.span(s, e))

    def show_metrics(self, kids: Kids, s: int, e: int) -> a.ShowMetrics:
        name = kids[-1].value if kids[-1].type == "IDENT" else None
        return a.ShowMetrics(name, span=self.span(s, e))

    def show_list(self, kids: Kids, s: int, e: int) -> a.Show:
        return a.Show(kids[1].value.lower(), span=self.span(s, e))

    def describe(self, kids: Kids, s: int, e: int) -> a.Describe:
        return a.Describe(_ident(kids), span=self.span(s, e))

    def describe_function(self, kids: Kids, s: int, e: int) -> a.DescribeFunction:
        return a.DescribeFunction(kids[2].value.upper(), span=self.span(s, e))

    def explain(self, kids: Kids, s: int, e: int) -> a.Explain:
        if isinstance(kids[1], a.Node):
            return a.Explain(statement=kids[1], span=self.span(s, e))  # type: ignore[arg-type]
        return a.Explain(name=kids[1].value, span=self.span(s, e))

    def set_stmt(self, kids: Kids, s: int, e: int) -> a.SetProperty:
        return a.SetProperty(kids[1].value, kids[3].value, span=self.span(s, e))

    def unset_stmt(self, kids: Kids, s: int, e: int) -> a.UnsetProperty:
        return a.UnsetProperty(kids[1].value, span=self.span(s, e))

    # ------------------------------------------------------------ SELECT

    def select_stmt(self, kids: Kids, s: int, e: int) -> a.Select:
        # kids: [ctes] select_core union_branch* emit_part limit_part with_part
        emit_p, limit_p, with_p = kids[-3:]
        if len(kids) == 4 and emit_p is None and limit_p is None and with_p is None:
            return kids[0]  # type: ignore[no-any-return]  # the common case: one plain SELECT
        ctes: tuple[a.Cte, ...] = ()
        if type(kids[0]) is Part:
            ctes, kids = kids[0].value, kids[1:]
        first: a.Select = kids[0]
        emit, emit_span = emit_p.value[0] if emit_p is not None else (None, None)
        return copy_with(
            first, span=self.span(s, e), emit=emit, emit_span=emit_span,
            limit=limit_p.value[0] if limit_p is not None else None,
            properties=with_p.value[0] if with_p is not None else (),
            ctes=ctes, union_all=tuple(kids[1:-3]),
        )  # fmt: skip

    def select_core(self, kids: Kids, s: int, e: int) -> a.Select:
        distinct = kids[1].type == "DISTINCT" if type(kids[1]) is Token else False
        items, (table, joins) = kids[2 if distinct else 1], kids[4 if distinct else 3]
        windows: list[a.Window] = []
        clauses: dict[str, Any] = {}
        for part in kids[-5:]:
            if part is None:
                continue
            value, window = part.value
            clauses[part.tag] = value
            if window is not None:
                if windows:
                    raise self.error("A query can have only one WINDOW clause", _start(window))
                windows.append(window)
        return make_select(
            self._lines, s, e, items, table, clauses.get("where"), distinct, None, None, (),
            joins, clauses.get("group", ()), clauses.get("having"),
            windows[0] if windows else None, (), (), clauses.get("partition", ()),
        )  # fmt: skip

    def union_branch(self, kids: Kids, s: int, e: int) -> a.Select:
        return kids[2]  # type: ignore[no-any-return]

    def ctes(self, kids: Kids, s: int, e: int) -> Part:
        ctes = tuple(_nodes(kids))
        seen: set[str] = set()
        for cte in ctes:
            if cte.name in seen:
                raise self.error(f"WITH defines '{cte.name}' twice", _start(cte))
            seen.add(cte.name)
        return Part("ctes", ctes)

    def cte(self, kids: Kids, s: int, e: int) -> a.Cte:
        return a.Cte(kids[0].value, kids[3], span=self.span(s, e))

    def partition_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("partition", (tuple(_nodes(kids)), None)) if kids else None

    def select_items(self, kids: Kids, s: int, e: int) -> tuple[a.SelectItem, ...]:
        return tuple(_nodes(kids))

    def select_expr(self, kids: Kids, s: int, e: int) -> a.SelectItem:
        expr = kids[0]
        if isinstance(expr, a.Star):
            raise self.error("'*' cannot be used in an expression", s, "*")
        # kids: expr [[AS] IDENT] [primary_key]
        alias = None
        if len(kids) > 1 and type(kids[1]) is Token:
            alias = kids[1].value if kids[1].type == "IDENT" else kids[2].value
        return make_item(self._lines, s, e, expr, alias, type(kids[-1]) is Part)

    def select_star(self, kids: Kids, s: int, e: int) -> a.SelectItem:
        tok = kids[0]
        qualifier = tok.value if tok.type == "QSTAR" else None
        return make_item(self._lines, s, e, make_star(self._lines, s, e, qualifier))

    def primary_key(self, kids: Kids, s: int, e: int) -> Part:
        return Part("pk", True)

    def from_clause(self, kids: Kids, s: int, e: int) -> tuple[a.TableRef, tuple[a.Join, ...]]:
        return kids[0], tuple(kids[1:])

    def table_alias(self, kids: Kids, s: int, e: int) -> a.TableRef:
        return make_table(self._lines, s, e, kids[0].value, kids[-1].value)

    def table(self, kids: Kids, s: int, e: int) -> a.TableRef:
        return make_table(self._lines, s, e, kids[0].value)

    def derived_table(self, kids: Kids, s: int, e: int) -> a.TableRef:
        return make_table(self._lines, s, e, kids[-1].value, None, kids[1])

    def join(self, kids: Kids, s: int, e: int) -> a.Join:
        # kids: kind JOIN table [within] ON expr [within]
        kind, table = kids[0].value, kids[2]
        withins = [k for k in kids[3:] if type(k) is Part]
        if len(withins) > 1:
            raise self.error("A JOIN can have only one WITHIN", _start(withins[1].value[0]))
        on = kids[5] if withins and type(kids[3]) is Part else kids[4]
        within, after, grace = withins[0].value if withins else (None, None, None)
        return make_join(self._lines, s, e, kind, table, on, within, after, grace)

    def join_kind(self, kids: Kids, s: int, e: int) -> Part:
        return Part("kind", kids[0].value.lower() if kids else "inner")

    def within(self, kids: Kids, s: int, e: int) -> Part:
        grace = kids[2].value if len(kids) > 2 else None
        return Part("within", (kids[1], None, grace))

    def within_range(self, kids: Kids, s: int, e: int) -> Part:
        grace = kids[6].value if len(kids) > 6 else None
        return Part("within", (kids[2], kids[4], grace))

    def window_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("window_only", (None, kids[0])) if kids else None

    def where_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("where", (kids[1], kids[2] if len(kids) > 2 else None)) if kids else None

    def group_part(self, kids: Kids, s: int, e: int) -> Part | None:
        if not kids:
            return None
        window = kids[-1] if isinstance(kids[-1], a.Window) else None
        exprs = tuple(k for k in _nodes(kids[2:]) if k is not window)
        return Part("group", (exprs, window))

    def having_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("having", (kids[1], kids[2] if len(kids) > 2 else None)) if kids else None

    def emit_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("emit", ((kids[1].value.lower(), self.span(s, e)), None)) if kids else None

    def limit_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("limit", (kids[0].value, None)) if kids else None

    def limit_clause(self, kids: Kids, s: int, e: int) -> Part:
        return Part("limit", self._count(kids[1]))

    def with_part(self, kids: Kids, s: int, e: int) -> Part | None:
        return Part("with", (kids[0].value, None)) if kids else None

    def with_clause(self, kids: Kids, s: int, e: int) -> Part:
        return Part("with", tuple(_nodes(kids)))

    def property(self, kids: Kids, s: int, e: int) -> a.Property:
        key = kids[0]
        name = key.value if key.type == "STRING" else self._raw(key)
        return make_property(self._lines, s, e, name, kids[2].value)

    def prop_value(self, kids: Kids, s: int, e: int) -> Part:
        tok = kids[-1]
        if tok.type == "NUMBER":
            number = _number(tok.value)
            return Part("value", -number if len(kids) == 2 else number)
        if tok.type == "IDENT":
            return Part("value", self._raw(tok))
        return Part("value", _CONSTANTS.get(tok.type, tok.value))

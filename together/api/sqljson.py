"""A list page's JSON, written by PostgreSQL (issue 15).

Parsing every timestamp of a page into `datetime` and formatting it back,
decoding `metadata` to re-encode it, and building a dict per row is most of a
list page's time. Here PostgreSQL writes each row's object as text, in the
exact bytes `together.api.renderers.dumps` gives the row a representation
function renders (compact, keys in the same order, timestamps ISO 8601 UTC with
milliseconds and Z, dates ISO, strings escaped alike), and Python only joins
the texts into one `orjson.Fragment`.

One exception: a JSON column's text as PostgreSQL stores it (jsonb: `{"a": 1}`,
keys in jsonb's order) is not compact; it comes as its own column, is kept as
is when it is `{}` and otherwise decoded as Django decodes it and encoded by
`dumps`, so it is byte for byte what the Python path gives.

`RowJson.for_model(model, fields, tail_keys)` builds the SQL once per field
list; a field of a type it does not know raises `Unsupported` there (the caller
keeps its Python path). tests/api/test_list_json.py compares both paths byte for
byte on rows that stress each type.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import orjson
from django.db.models.expressions import RawSQL

from together.api.renderers import dumps
from together.db import prepared_cursor
from together.models import check_scoped

PLAIN_TYPES = {
    "AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "DateField", "ForeignKey",
    "IntegerField", "OneToOneField", "PositiveBigIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField",
    "SlugField", "SmallIntegerField", "TextField", "EmailField",
}
TIMESTAMP_FORMAT = '\'"\'||to_char({col} AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\')||\'"\''


class Unsupported(Exception):
    """A field whose rendering this module does not reproduce."""


def _key(name: str) -> str:
    return orjson.dumps(name).decode()


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class RowJson:
    """The annotations a queryset gets (`annotations()`), the names to fetch with
    `.values()` (`values`), and `objects(rows)`: the page's JSON objects."""

    segments: tuple[str, ...]  # SQL text expressions, between the JSON columns
    json_columns: tuple[str, ...]  # SQL of the JSON columns, as text
    tail_keys: tuple[str, ...]  # keys appended after the fields, from the row's own values (e.g. annotations)
    constant_tail: str  # e.g. ,"object":"donation"
    # (name, expression): annotations whose text ends the object as is, JSON members each opening with
    # "," (e.g. two keys from one subquery, where tail_keys would take a subquery each)
    tail_json: tuple = ()

    PREFIX = "_rowjson_"

    @classmethod
    def for_model(cls, model, fields: tuple[str, ...], *, constants: dict | None = None,
                  tail_keys: tuple[str, ...] = (), tail_json: dict | None = None) -> "RowJson":
        """`fields` of `model`'s table, in order, then `constants` (key → value, e.g. {"object": "donation"}),
        then `tail_keys` (values fetched alongside, e.g. annotations), as the object's keys in that order;
        then the members `tail_json`'s expressions write (name → an expression of text like
        `,"a":1,"b":"x"`, in the exact bytes `dumps` gives those members)."""
        table = model._meta.db_table
        segments, json_columns = [], []
        current: list[str] = []
        opening = "{"
        for i, name in enumerate(fields):
            field = model._meta.get_field(name)
            kind = field.get_internal_type()
            col = f'"{table}"."{field.column}"'
            key = _sql_literal(("" if i == 0 else ",") + _key(name) + ":")
            if kind == "JSONField":
                current.append(key)
                segments.append(_sql_literal(opening) + "||" + "||".join(current) if current else _sql_literal(opening))
                json_columns.append(f"{col}::text")
                current, opening = [], ""
                continue
            if kind == "DateTimeField":
                value = f"COALESCE({TIMESTAMP_FORMAT.format(col=col)}, 'null')"
            elif kind in PLAIN_TYPES:
                value = f"COALESCE(to_json({col})::text, 'null')"
            else:
                raise Unsupported(f"{model.__name__}.{name} ({kind})")
            current += [key, value]
        segments.append("||".join([_sql_literal(opening) if opening else "''", *current]) if current else _sql_literal(opening))
        constant_tail = "".join("," + _key(k) + ":" + dumps(v).decode() for k, v in (constants or {}).items())
        return cls(segments=tuple(segments), json_columns=tuple(json_columns), tail_keys=tuple(tail_keys),
                   constant_tail=constant_tail, tail_json=tuple((tail_json or {}).items()))

    @property
    def values(self) -> tuple[str, ...]:
        names = [f"{self.PREFIX}s{i}" for i in range(len(self.segments))]
        names += [f"{self.PREFIX}j{i}" for i in range(len(self.json_columns))]
        return (*names, *self.tail_keys, *(name for name, _ in self.tail_json))

    def annotations(self) -> dict:
        out = {f"{self.PREFIX}s{i}": RawSQL(sql, ()) for i, sql in enumerate(self.segments)}
        out.update({f"{self.PREFIX}j{i}": RawSQL(sql, ()) for i, sql in enumerate(self.json_columns)})
        out.update(self.tail_json)
        return out

    def objects(self, rows: list[dict]) -> list[str]:
        """Each row's object as JSON text."""
        seg_names = [f"{self.PREFIX}s{i}" for i in range(len(self.segments))]
        json_names = [f"{self.PREFIX}j{i}" for i in range(len(self.json_columns))]
        tail_keys = [(k, "," + _key(k) + ":") for k in self.tail_keys]
        tail_json = [name for name, _ in self.tail_json]
        constant_tail = self.constant_tail
        out = []
        for row in rows:
            parts = [row[seg_names[0]]]
            for json_name, seg_name in zip(json_names, seg_names[1:]):
                parts.append(_compact(row[json_name]))
                parts.append(row[seg_name])
            parts.append(constant_tail)
            for key, prefix in tail_keys:
                parts.append(prefix)
                parts.append(dumps(row[key]).decode())
            for name in tail_json:
                parts.append(row[name])
            parts.append("}")
            out.append("".join(parts))
        return out

    def fragment(self, rows: list[dict]) -> orjson.Fragment:
        """The page's `[…]` as one fragment for the renderer."""
        return orjson.Fragment(("[" + ",".join(self.objects(rows)) + "]").encode())


def _compact(text: str | None) -> str:
    if text is None:
        return "null"
    if text == "{}" or text == "[]":
        return text
    return dumps(json.loads(text)).decode()


# --- compiled statements ------------------------------------------------------------

@dataclass
class _Compiled:
    sql: str
    template: list  # per parameter: ("var", name) or ("const", value)
    checked: bool = False  # a later compile of the same shape gave the same statement


_compiled: dict = {}
_MISMATCH = object()


def _compile(queryset, shape, variables: dict) -> tuple[str, list]:
    """(sql, params) of `queryset`. With a `shape` (a key for everything about the
    query but `variables`, e.g. the organisation and cursor ids), the SQL is compiled
    once per shape and process (the ORM's compile is a third of a page's time) and
    the parameters filled in from `variables`. The first reuse compiles again and
    compares: a shape whose statement differs is never cached again."""
    if shape is None:
        return queryset.query.get_compiler(queryset.db).as_sql()
    entry = _compiled.get(shape)
    if entry is not None and entry is not _MISMATCH and entry.checked:
        return entry.sql, [variables[v] if kind == "var" else v for kind, v in entry.template]
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    if entry is _MISMATCH:
        return sql, params
    names = {value: name for name, value in variables.items()}
    template = [("var", names[p]) if isinstance(p, str) and p in names else ("const", p) for p in params]
    if entry is None:
        _compiled[shape] = _Compiled(sql=sql, template=template)
    elif entry.sql == sql and entry.template == template:
        entry.checked = True
    else:
        _compiled[shape] = _MISMATCH
    return sql, list(params)


def compiled_statement(shape, variables: dict) -> tuple[str, list] | None:
    """The statement of a shape compiled and checked before (see _compile), its
    variables filled in, when its organisation is one of them: a list page of that
    shape then runs without building its queryset (run_prepared). None otherwise."""
    entry = _compiled.get(shape)
    if entry is None or entry is _MISMATCH or not entry.checked or ("var", "organisation") not in entry.template:
        return None
    if any(kind == "var" and name not in variables for kind, name in entry.template):
        return None
    return entry.sql, [variables[v] if kind == "var" else v for kind, v in entry.template]


def run_prepared(sql: str, params: list, *, using: str = "default") -> list[dict]:
    """Run `sql` bound on the server (prepared from its few runs on a connection:
    together/db.py) through Django's cursor wrapper (execute wrappers, query
    logging and counting in tests); rows as dicts."""
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, params)
        names = [d.name for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def fetch_prepared(queryset, *, shape=None, variables: dict | None = None) -> list[dict]:
    """`list(queryset)` of a `.values()` queryset (rows as dicts keyed by the selected
    names), run as run_prepared runs it; with a `shape`, compiled once
    (see _compile). The tenancy guard is checked as QuerySet iteration checks it, and
    the statement goes through Django's cursor wrapper (execute wrappers, query
    logging and counting in tests)."""
    check_scoped(queryset)
    sql, params = _compile(queryset, shape, variables or {})
    return run_prepared(sql, params, using=queryset.db)

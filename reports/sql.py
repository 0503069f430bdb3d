"""SQL expressions every report shares, so that the CSV (PostgreSQL's COPY) and
the XLSX (a server-side cursor over the same SELECT) get identical cells.

- `Neutralised`: a text cell beginning with `=`, `+`, `-`, `@`, a tab or a
  carriage return gets a leading single quote, so that a spreadsheet never reads
  it as a formula (OWASP "CSV injection"). Done in SQL, so COPY stays the fast
  path. Numbers are never neutralised: they stay numbers.
- `Dollars`: integer cents as a numeric with two decimals (`1234` -> `12.34`).
- `IsoTimestamp`: an aware timestamp as ISO 8601 UTC with milliseconds and `Z`,
  the REST API's format.
"""
from __future__ import annotations

from django.db.models import DecimalField, Func, TextField

# The first characters that make a spreadsheet evaluate a cell.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_TRIGGERS_SQL = "('=', '+', '-', '@', chr(9), chr(13))"


def neutralise_sql(expression: str) -> str:
    """The SQL of `expression` (a parameter-free SQL text expression) neutralised."""
    return f"(CASE WHEN left({expression}, 1) IN {_TRIGGERS_SQL} THEN '''' || {expression} ELSE {expression} END)"


def dollars_sql(expression: str) -> str:
    return f"(({expression})::numeric / 100)::numeric(18, 2)"


def iso_timestamp_sql(expression: str) -> str:
    return f"to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def neutralise_value(value):
    """The same rule in Python, for values that do not come from SQL."""
    if isinstance(value, str) and value[:1] in FORMULA_TRIGGERS:
        return "'" + value
    return value


class Neutralised(Func):
    """`neutralise_sql` as an ORM expression. The wrapped expression is repeated
    in the SQL, so it must not carry parameters (columns and literal-only
    functions do not)."""

    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        if params:
            raise ValueError("Neutralised() needs an expression without query parameters.")
        return neutralise_sql(sql), []


class Dollars(Func):
    output_field = DecimalField(max_digits=18, decimal_places=2)

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return dollars_sql(sql), params


class IsoTimestamp(Func):
    output_field = TextField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return iso_timestamp_sql(sql), params


class SqlTemplate(Func):
    """A literal SQL template over column expressions: `{0}`, `{1}` … are the
    compiled arguments. The template must not contain user input."""

    output_field = TextField()

    def __init__(self, template: str, *expressions, output_field=None):
        super().__init__(*expressions, output_field=output_field or TextField())
        self.sql_template = template

    def as_sql(self, compiler, connection, **extra_context):
        parts = []
        for expression in self.source_expressions:
            sql, params = compiler.compile(expression)
            if params:
                raise ValueError("SqlTemplate() arguments must not carry query parameters.")
            parts.append(sql)
        return self.sql_template.format(*parts), []

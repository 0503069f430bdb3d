"""The rows of `make bench`.

A scenario is a function `fn(ctx: BenchContext) -> Measurement`, registered
with `@scenario(name, baseline=...)`; a baseline is one registered with
`@baseline(name)`, measured once per run however many scenarios compare with
it. The table prints, per scenario: its result, its baseline's result, and
result / baseline.

Adding a row (in this file, or in a module listed in BENCH_MODULES below):

    @scenario("GET /api/v1/donations (50 rows)", baseline=EMPTY)
    def donations_list(ctx: BenchContext) -> Measurement:
        seed_donations(ctx.organisation, 50)        # Django ORM on the bench database
        return ctx.load("GET", "/api/v1/donations?limit=50", key=ctx.read_key)

`ctx.load` runs the closed-loop load for ctx.duration seconds after
ctx.warmup seconds and returns successful requests per second; non-2xx
answers are counted as errors, and a row with errors fails the run.
"""
from __future__ import annotations

import operator
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from bench.load import LoadResult, run_load

# Modules imported before the run, so that their @scenario/@baseline register.
BENCH_MODULES: list[str] = ["bench.records", "bench.webhooks", "bench.export", "bench.dashboard", "bench.stripe_events",
                            "bench.recurring"]


@dataclass
class Measurement:
    value: float
    unit: str = "req/s"
    higher_is_better: bool = True
    errors: int = 0
    detail: str = ""  # shown under the table, e.g. latency percentiles
    # Figures a goal may check besides the value (e.g. "p95_ms", "peak_rss_mb", "queries_per_create").
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_load(cls, result: LoadResult) -> "Measurement":
        detail = f"{result.requests} requests"
        if result.p50_ms is not None:
            detail += f", p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
        detail += f"; {result.client}"
        return cls(value=result.rps, errors=result.errors, detail=detail)

    def __str__(self) -> str:
        return f"{self.value:,.0f} {self.unit}" if self.value >= 100 else f"{self.value:,.2f} {self.unit}"


@dataclass
class BenchContext:
    """What a scenario gets: a running server on the bench database."""

    base_url: str  # e.g. http://127.0.0.1:41234
    read_key: str  # plaintext API keys on ctx.organisation
    write_key: str
    organisation: Any  # organisations.models.Organisation (live)
    db: Any  # django.db.connection, on the bench database
    duration: float = 5.0
    warmup: float = 1.0
    concurrency: int = 8
    baselines: dict[str, Measurement] = field(default_factory=dict)

    @property
    def api_key(self) -> str:
        return self.read_key

    def load(self, method: str, path: str, *, key: str | None = None, headers: dict[str, str] | None = None,
             body: bytes | None = None) -> Measurement:
        all_headers = {"Accept": "application/json"}
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        all_headers.update(headers or {})
        result = run_load(self.base_url + path, method=method, headers=all_headers, body=body,
                          duration=self.duration, warmup=self.warmup, concurrency=self.concurrency)
        return Measurement.from_load(result)

    def baseline(self, name: str) -> Measurement:
        if name not in self.baselines:
            self.baselines[name] = BASELINES[name](self)
        return self.baselines[name]


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
_SIGNS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "="}


@dataclass(frozen=True)
class Clause:
    """One comparison of a goal: `subject op limit`.

    subject: "ratio" (value / baseline's value), "value" (the row's own figure, in its unit), "errors", or the name
    of one of the measurement's `metrics`.
    """

    subject: str
    op: str
    limit: float
    unit: str = ""

    def actual(self, result: Measurement, base: Measurement | None) -> float | None:
        if self.subject == "ratio":
            return result.value / base.value if base is not None and base.value else None
        if self.subject == "value":
            return result.value
        if self.subject == "errors":
            return float(result.errors)
        return result.metrics.get(self.subject)

    def __str__(self) -> str:
        limit = f"{self.limit:g}"
        if self.subject == "ratio":
            return f"{_SIGNS[self.op]} {limit}x"
        if self.subject == "value":
            return f"{_SIGNS[self.op]} {self.limit:,g}{' ' + self.unit if self.unit else ''}"
        return f"{self.subject} {_SIGNS[self.op]} {limit}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class Goal:
    """What a row must reach, and where that is asked (e.g. "issue 15").

    A goal without clauses is only a statement (no numeric goal): it is never "met" or "missed".
    """

    source: str
    clauses: tuple[Clause, ...] = ()
    note: str = ""  # said instead of the clauses, or after them

    @classmethod
    def of(cls, source: str, *clauses: tuple, note: str = "") -> "Goal":
        return cls(source=source, clauses=tuple(Clause(*c) for c in clauses), note=note)

    def __str__(self) -> str:
        parts = [" and ".join(str(c) for c in self.clauses)] if self.clauses else []
        if self.note:
            parts.append(self.note)
        return f"{'; '.join(parts) or 'no numeric goal'} ({self.source})"

    def verdict(self, result: Measurement, base: Measurement | None) -> tuple[str, list[str]]:
        """("met" | "MISSED" | "not measured" | "-", why) for one result."""
        if not self.clauses:
            return "-", []
        missed, unmeasured = [], []
        for clause in self.clauses:
            actual = clause.actual(result, base)
            if actual is None:
                unmeasured.append(f"{clause.subject} not measured")
            elif not _OPS[clause.op](actual, clause.limit):
                missed.append(f"{clause.subject} {actual:,.3g} (goal {clause})")
        if missed:
            return "MISSED", missed + unmeasured
        if unmeasured:
            return "not measured", unmeasured
        return "met", []


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[BenchContext], Measurement]
    baseline: str | None = None
    goal: Goal | None = None


SCENARIOS: list[Scenario] = []
BASELINES: dict[str, Callable[[BenchContext], Measurement]] = {}


def scenario(name: str, *, baseline: str | None = None, goal: Goal | None = None):
    def register(fn):
        SCENARIOS[:] = [s for s in SCENARIOS if s.name != name]
        SCENARIOS.append(Scenario(name=name, run=fn, baseline=baseline, goal=goal))
        return fn

    return register


def baseline(name: str):
    def register(fn):
        BASELINES[name] = fn
        return fn

    return register


# --- baselines ---------------------------------------------------------------------

EMPTY = "GET /_bench/empty"


WHOAMI_ROUNDS = int(os.environ.get("BENCH_WHOAMI_ROUNDS", "3"))
_whoami_rounds: dict[str, list[Measurement]] = {}


def _best_of_turns(ctx: BenchContext, name: str) -> Measurement:
    """The bare view and whoami take turns, WHOAMI_ROUNDS rounds of one load each; each
    row is its best round. One load each, one after the other, let a passing disturbance
    (the checkpointer writing a fresh database, another row's leftovers) fall on one side
    only: whoami measured 0.22x in one run and 0.51x alone minutes later."""
    if not _whoami_rounds:
        empty, who = [], []
        for _ in range(WHOAMI_ROUNDS):
            empty.append(ctx.load("GET", "/_bench/empty"))
            who.append(ctx.load("GET", "/api/v1/whoami", key=ctx.read_key))
        _whoami_rounds.update(empty=empty, whoami=who)
    rounds = _whoami_rounds[name]
    best = max(rounds, key=lambda m: m.value)
    others = ", ".join(f"{m.value:,.0f}" for m in rounds)
    return replace(best, detail=f"best of {len(rounds)} rounds taking turns ({others} req/s); {best.detail}")


@baseline(EMPTY)
def bench_empty(ctx: BenchContext) -> Measurement:
    """A bare Django view (BENCH_ENDPOINTS=1): the full middleware stack, no DRF, no key, no query."""
    return _best_of_turns(ctx, "empty")


# --- scenarios ---------------------------------------------------------------------

@scenario("GET /api/v1/whoami", baseline=EMPTY, goal=Goal.of("issue 15", ("ratio", ">=", 0.5)))
def whoami(ctx: BenchContext) -> Measurement:
    """Authenticated API round trip: key lookup, scope check, envelope."""
    return _best_of_turns(ctx, "whoami")

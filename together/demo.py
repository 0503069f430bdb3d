"""Demo data for `make run` (`python manage.py load_demo`).

Loading is idempotent: every step finds what an earlier run made before it
creates anything, so running it twice changes nothing and prints the same
lines (the same passwords and the same API keys).

Steps run in `order`, in one transaction, and share a `DemoContext`. The first
steps (organisations/demo.py) make the demo organisation "Riverbank Action"
(slug `riverbank`, with its sandbox twin), three users (ADMIN, EDITOR, VIEWER)
and one READ and one WRITE API key on the live organisation. This module is the
machinery only: it imports no app.

Extending it: another app adds a module `<app>/demo.py` that registers steps;
`load_demo` imports every installed app's `demo` module first (as the admin
does with `admin.py`), so nothing here needs editing::

    # donations/demo.py
    from together.demo import DemoContext, demo_step

    @demo_step(order=100)
    def donors(ctx: DemoContext) -> None:
        ...  # use ctx.organisation, ctx.sandbox, ctx.users["ADMIN"], ctx.actor
        ctx.report("Demo donors: 25")   # printed after the transaction commits

Use orders above 100 for data that needs the organisation, users and keys.

API keys: a key's plaintext is never stored, so to print the same demo keys on
every run their plaintext is derived from SECRET_KEY and a label
(`organisations.demo.demo_key_plaintext`); the row is created only when no key
with that hash exists. Changing SECRET_KEY gives new demo keys.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from django.db import transaction

from together.actors import Actor


@dataclass
class DemoContext:
    """What the steps share. Steps fill it in as they go."""

    stdout: TextIO
    actor: Actor = field(default_factory=lambda: Actor.system("manage.py load_demo"))
    organisation: Any = None  # the live demo Organisation
    sandbox: Any = None
    users: dict[str, object] = field(default_factory=dict)  # role -> user
    keys: dict[str, str] = field(default_factory=dict)  # scope -> plaintext
    lines: list[str] = field(default_factory=list)

    def report(self, line: str) -> None:
        """A line to print once everything has committed."""
        self.lines.append(line)


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    run: Callable[[DemoContext], None]


# The registry: `demo_step` appends here; `load_demo` runs them by `order`.
DEMO_STEPS: list[DemoStep] = []


def demo_step(*, order: int, name: str | None = None):
    """Register a step `fn(ctx: DemoContext) -> None`. Re-registering a name replaces it."""

    def register(fn: Callable[[DemoContext], None]):
        step_name = name or f"{fn.__module__}.{fn.__qualname__}"
        DEMO_STEPS[:] = [s for s in DEMO_STEPS if s.name != step_name]
        DEMO_STEPS.append(DemoStep(order=order, name=step_name, run=fn))
        return fn

    return register


# --- entry point -----------------------------------------------------------------

def discover_steps() -> None:
    """Import `<app>.demo` for every installed app, so their steps register."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("demo")


def load_demo(stdout: TextIO | None = None) -> DemoContext:
    """Run every registered step in order, in one transaction, then print the report."""
    discover_steps()
    ctx = DemoContext(stdout=stdout or sys.stdout)
    with transaction.atomic():
        for step in sorted(DEMO_STEPS, key=lambda s: (s.order, s.name)):
            step.run(ctx)
    for line in ctx.lines:
        ctx.stdout.write(line + "\n")
    return ctx

"""A billing run in its own process, for the kill test (tests/recurring/test_concurrency.py).

    python tests/recurring/billing_worker.py <signal file> <now, ISO 8601>

It runs payments.billing.billing_run as the Celery task does, except that the
moment Stripe has made the PaymentIntent and before the run records anything
(the call to payment_sync), it writes the intent's id to the signal file and
waits, so the test can SIGKILL it exactly there."""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "together.settings")

import django  # noqa: E402

django.setup()

from payments import billing  # noqa: E402


def main() -> None:
    signal_file, now = Path(sys.argv[1]), dt.datetime.fromisoformat(sys.argv[2])

    def charged_then_wait(*, payment_intent_id: str, **kwargs):
        from django.db import connection

        # The intent, and the PostgreSQL backend holding the plan's lock (the test waits for it to end:
        # a killed client's backend lives on until it reads the closed socket). Written whole, then renamed.
        written = signal_file.with_suffix(".tmp")
        written.write_text(f"{payment_intent_id} {connection.connection.info.backend_pid}")
        written.rename(signal_file)
        time.sleep(600)  # killed here: the intent exists, nothing is recorded, the transaction is open

    billing.payment_sync = charged_then_wait
    print(billing.billing_run(now=now), flush=True)


if __name__ == "__main__":
    main()

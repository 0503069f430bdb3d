from __future__ import annotations

import io
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from imports import services
from imports.models import Import
from together.actors import Actor

ACTOR = Actor.system("import tests")

MESSY_CSV = (
    "\ufeffExternal ID;First name;Surname;Email address;Address;Postcode;Gift amount;Date;Reference;Fund\r\n"
    "G-1;Ann;Lee;ann@example.org;1 High St;2000;$1,234.50;01/03/2025;;\r\n"          # new donor, new gift
    "G-2;Ann;Lee;ann@example.org;1 High St;2000;50;02/03/2025;chq 7;\r\n"            # same donor (email), new gift
    "\r\n"                                                                             # blank line
    "G-3;Bob;Known;bob@example.org;;2010;45000;15/01/2025;;\r\n"                     # existing donor by email
    "G-OLD;Bob;Known;bob@example.org;;2010;100;01/01/2025;;\r\n"                     # existing gift ext id: duplicate
    "G-5;Cat;Capped;cat@example.org;;2020;$7,000.00;10/02/2025;;NSW-FUND\r\n"        # new donor, gift under cap
    "G-6;Cat;Capped;cat@example.org;;2020;$1,000.00;11/02/2025;;NSW-FUND\r\n"        # file's own rows pass the cap
    "G-7;Dan;Bad;dan@example.org;;2030;=SUM(A1:A3);12/02/2025;;\r\n"                 # formula: invalid amount
    "G-8;Eve;Bad;eve@example.org;;2040;20;31/02/2025;;\r\n"                          # no such date: invalid
    "G-9;Fay;Street;;12 Low Rd;3000;30;45720;;\r\n"                                   # name+address match, Excel serial
    ";Ann;Lee;ann@example.org;1 High St;2000;50;02/03/2025;CHQ 7;\r\n"              # no ext ID: same donor+date+amount+ref as line 3
)


def upload(org, content: bytes | str, name: str = "gifts.csv", mapping: dict | None = None) -> Import:
    if isinstance(content, str):
        content = content.encode("utf-8")
    job = services.import_create(organisation=org, actor=ACTOR, file=SimpleUploadedFile(name, content), file_name=name,
                                 mapping=mapping)
    if job.status == "ANALYSING":
        services.import_plan_run(import_id=job.id)
    job.refresh_from_db()
    return job


def outcomes(job) -> dict[int, tuple]:
    return {r.position: (r.outcome, r.donor_outcome, r.match_by) for r in job.rows.order_by("position")}


def commit(org, job) -> Import:
    services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
    services.import_commit_run(import_id=job.id)
    job.refresh_from_db()
    return job

"""Compliance services: every state change about thresholds and caps.

The arithmetic they apply (which rule, what counts, the room under a cap, the
threshold test, the periods) is `compliance.rules`; these functions lock, ask
it, and record what follows.

`donation_compliance_prepare` runs inside the donation services' transaction
after the donor row is locked: it resolves the gift's jurisdiction (the code
joins the library) and refuses a gift that would take the donor past a cap.
`donor_compliance_recompute` then rebuilds the donor's aggregates from the
ledger and opens, cancels or flags obligations, alert levels and breaches.
Because every gift of a donor takes the donor's row lock first, concurrent
gifts of one donor are checked one after another: the cap is exact.
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
from dataclasses import dataclass, field

import orjson
from django.db import connection, transaction
from django.utils import timezone

from compliance import rules
from compliance.models import (
    REVENUE_CODE_RE, AlertLevel, ComplianceBreach, ComplianceSettings, DeadlineRule, DisclosureObligation, DonorAggregate,
    ElectionPeriod, Jurisdiction, ObligationStatus, Recompute, RegimeRule, RemapStatus, RevenueCode, RevenueCodeStatus,
)
from compliance.representations import (
    BREACH_FIELDS, ELECTION_FIELDS, OBLIGATION_FIELDS, REVENUE_CODE_FIELDS, SETTINGS_FIELDS, render_breach,
    render_election, render_obligation, render_revenue_code, render_settings,
)
from donations.models import Donation, DonationType, Donor
from organisations.models import Organisation
from organisations.services import audit_record
from together.actors import Actor
from together.celery import task_send
from together.db import UNNEST_FROM_ROWS, execute_batched, insert_rows, prepared_cursor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks.events import event_record

COMPLIANCE_ACTOR = Actor.system("compliance")


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


# --- refusals on public pages ---------------------------------------------------------
#
# A cap refusal's message and `remaining_cents` describe what the donor has given:
# staff see them (API envelope, dashboard). A public page (giving form, donation
# form, checkout link) must not, for anyone can type anyone's email: it shows
# `public_refusal_message`, one fixed sentence naming no amount, total or cap, the
# same for a known email and a new one and for every donor-specific reason.

PUBLIC_REFUSAL_MESSAGE = ("We can't accept this gift online. Please contact {organisation} directly if you would "
                          "like to give; they can explain your options.")
DONOR_SPECIFIC_REASONS = frozenset({"donor_cap_exceeded"})


class CapExceeded(ValidationFailed):
    """A gift that would take its donor past a cap (reason donor_cap_exceeded)."""

    donor_specific = True


def public_refusal_message(exc: Exception, *, organisation_name: str) -> str | None:
    """What a public page may say about a refused gift: the fixed sentence when the
    refusal depends on the donor's records (a cap, or any error marked
    `donor_specific`, e.g. raised in a recipient's books), else None (the error is
    about the input alone and its own message is safe to show)."""
    extra = getattr(exc, "extra", None) or {}
    if getattr(exc, "donor_specific", False) or extra.get("reason") in DONOR_SPECIFIC_REASONS:
        return PUBLIC_REFUSAL_MESSAGE.format(organisation=organisation_name)
    return None


# --- settings -------------------------------------------------------------------

def compliance_settings_get(*, organisation: Organisation) -> ComplianceSettings:
    settings_row, _ = ComplianceSettings.objects.get_or_create(organisation=organisation)
    return settings_row


def _settings_snapshot(organisation: Organisation) -> dict:
    return render_settings(ComplianceSettings.objects.filter(organisation=organisation).values(*SETTINGS_FIELDS).get())


@transaction.atomic
def compliance_settings_update(*, organisation: Organisation, actor: Actor, **changes) -> ComplianceSettings:
    current = compliance_settings_get(organisation=organisation)
    current = ComplianceSettings.objects.select_for_update().get(pk=current.pk)
    before = _settings_snapshot(organisation)
    if "default_jurisdiction" in changes and changes["default_jurisdiction"] not in Jurisdiction.values:
        raise ValidationFailed("default_jurisdiction is not a known jurisdiction.", param="default_jurisdiction")
    if "entity_type" in changes:
        from compliance.models import EntityType

        if changes["entity_type"] not in EntityType.values:
            raise ValidationFailed("entity_type is not a known AEC entity type.", param="entity_type")
    old_default = current.default_jurisdiction
    for key, value in changes.items():
        setattr(current, key, value)
    amber, red, critical = current.alert_amber_percent, current.alert_red_percent, current.alert_critical_percent
    if not (0 < amber < red < critical <= 100):
        param = "alert_amber_percent" if amber >= red or amber <= 0 else ("alert_red_percent" if red >= critical else "alert_critical_percent")
        raise ValidationFailed("Alert levels must rise: 0 < amber < red < critical ≤ 100.", param=param)
    current.save()
    audit_record(organisation=organisation, actor=actor, action="compliance_settings.updated", object_type="compliance_settings",
                 object_id=organisation.id, before=before, after=_settings_snapshot(organisation))
    if current.default_jurisdiction != old_default:
        recompute = Recompute.objects.create(
            organisation=organisation, reason="default jurisdiction changed",
            from_jurisdiction=old_default, to_jurisdiction=current.default_jurisdiction,
        )
        _enqueue_recompute(recompute.id)
    if {"alert_amber_percent", "alert_red_percent", "alert_critical_percent"} & set(changes):
        # Saving alert levels applies to existing aggregates at once.
        for aggregate in DonorAggregate.objects.for_organisation(organisation).filter(rule__cap_cents__isnull=False).select_related("rule"):
            level = rules.alert_level(aggregate.total_cents, aggregate.rule.cap_cents, current)
            if level != aggregate.alert_level:
                _set_alert(organisation, aggregate, level)
    return current


# --- revenue codes ---------------------------------------------------------------

def _revenue_code_snapshot(code_id: str) -> dict:
    return render_revenue_code(RevenueCode.objects.filter(pk=code_id).values(*REVENUE_CODE_FIELDS).get())


def _read_for_share(sql: str, params: list) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(sql + " FOR SHARE", params)
        row = cursor.fetchone()
    return row[0] if row else None


@dataclass
class ComplianceContext:
    """What a gift's checks read of its organisation, in one statement: the settings
    row, the rules (held per process, checked against the table's stamp in that
    statement) and the jurisdiction of the gift's revenue code (None: not in the
    library yet)."""

    settings_row: ComplianceSettings
    by_jurisdiction: dict
    code_jurisdiction: str | None = None


@functools.cache
def _context_statement(share_lock: bool) -> tuple[str, list]:
    """compliance_context's statement (its columns named: it is prepared) and the
    settings' fields in its order."""
    fields = ComplianceSettings._meta.concrete_fields
    lock = " FOR SHARE" if share_lock else ""
    sql = (
        f"SELECT {', '.join(f's.{connection.ops.quote_name(f.column)}' for f in fields)}, ({rules.RULES_STAMP_SQL}), "
        "(SELECT rc.jurisdiction FROM compliance_revenuecode rc WHERE rc.organisation_id = s.organisation_id "
        f"AND rc.code_lower = %s{lock}) "
        f"FROM compliance_compliancesettings s WHERE s.organisation_id = %s{' FOR SHARE OF s' if share_lock else ''}"
    )
    return sql, fields


def compliance_context(*, organisation: Organisation, code: str | None = None, share_lock: bool = True) -> ComplianceContext:
    """The organisation's compliance settings, the rules and `code`'s mapping, in one
    query. With `share_lock` the settings row and the code's row are share-locked until
    the transaction ends (see revenue_code_resolve)."""
    sql, fields = _context_statement(share_lock)
    params = [code.lower() if code else None, organisation.id]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:  # the organisation's first gift: its settings row is made with the defaults
            compliance_settings_get(organisation=organisation)
            cursor.execute(sql, params)
            row = cursor.fetchone()
    *values, stamp, code_jurisdiction = row
    values = [f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v for f, v in zip(fields, values)]
    settings_row = ComplianceSettings.from_db(connection.alias, [f.attname for f in fields], values)
    return ComplianceContext(settings_row=settings_row, by_jurisdiction=rules.rules_by_jurisdiction(stamp),
                             code_jurisdiction=code_jurisdiction)


def revenue_code_resolve(*, organisation: Organisation, code: str | None) -> str:
    """The jurisdiction of a gift with this code. A code seen for the first time
    joins the library, mapped to the organisation's default, unreviewed.

    The mapping read (the code's row, the settings' row) is share-locked until
    the gift commits, so a remap or a default change (which lock those rows FOR
    UPDATE) waits for gifts already in flight and its recompute then sees them:
    no gift keeps a stale jurisdiction."""
    return _resolve(organisation, code)[0]


def _resolve(organisation: Organisation, code: str | None) -> tuple[str, ComplianceContext]:
    context = compliance_context(organisation=organisation, code=code)
    default = context.settings_row.default_jurisdiction
    if not code:
        return default, context
    if context.code_jurisdiction is not None:
        return context.code_jurisdiction, context
    lower = code.lower()
    code_sql = "SELECT jurisdiction FROM compliance_revenuecode WHERE organisation_id = %s AND code_lower = %s"
    created = RevenueCode.objects.bulk_create(
        [RevenueCode(organisation=organisation, code=code, code_lower=lower, jurisdiction=default)], ignore_conflicts=True
    )
    row = RevenueCode.objects.for_organisation(organisation).get(code_lower=lower)
    if created and created[0].pk == row.pk:
        audit_record(organisation=organisation, actor=COMPLIANCE_ACTOR, action="revenue_code.created", object_type="revenue_code",
                     object_id=row.id, after=_revenue_code_snapshot(row.id))
    return _read_for_share(code_sql, [organisation.id, lower]), context


@transaction.atomic
def revenue_code_create(*, organisation: Organisation, actor: Actor, code: str, jurisdiction: str | None = None,
                        description: str | None = None) -> RevenueCode:
    code = (code or "").strip()
    if not REVENUE_CODE_RE.fullmatch(code):
        raise ValidationFailed("code may hold letters, digits and . _ - : / + @, at most 100 characters.", param="code")
    existing = RevenueCode.objects.for_organisation(organisation).filter(code_lower=code.lower()).first()
    if existing:
        raise Conflict(f"Revenue code '{existing.code}' already exists: {existing.id}.", param="code", existing_id=existing.id)
    if jurisdiction is not None and jurisdiction not in Jurisdiction.values:
        raise ValidationFailed("jurisdiction is not a known jurisdiction.", param="jurisdiction")
    row = RevenueCode.objects.create(
        organisation=organisation, code=code, code_lower=code.lower(),
        jurisdiction=jurisdiction or compliance_settings_get(organisation=organisation).default_jurisdiction,
        reviewed=jurisdiction is not None, description=description or None,
    )
    audit_record(organisation=organisation, actor=actor, action="revenue_code.created", object_type="revenue_code",
                 object_id=row.id, after=_revenue_code_snapshot(row.id))
    return row


def _revenue_code_for_update(organisation: Organisation, code_id: str) -> RevenueCode:
    row = RevenueCode.objects.for_organisation(organisation).select_for_update().filter(pk=code_id).first()
    if row is None:
        raise NotFound("Revenue code not found.")
    return row


@transaction.atomic
def revenue_code_update(*, organisation: Organisation, actor: Actor, revenue_code_id: str, jurisdiction: str | None = None,
                        description: str | None = ..., status: str | None = None) -> tuple[RevenueCode, Recompute | None]:
    """Map a code (saved at once; totals recomputed in the background)."""
    row = _revenue_code_for_update(organisation, revenue_code_id)
    before = _revenue_code_snapshot(row.id)
    recompute = None
    if description is not ...:
        row.description = description or None
    if status is not None:
        if status not in RevenueCodeStatus.values:
            raise ValidationFailed("status must be ACTIVE or ARCHIVED.", param="status")
        row.status = status
    if jurisdiction is not None:
        if jurisdiction not in Jurisdiction.values:
            raise ValidationFailed("jurisdiction is not a known jurisdiction.", param="jurisdiction")
        old = row.jurisdiction
        row.jurisdiction = jurisdiction
        row.reviewed = True
        if old != jurisdiction:
            recompute = Recompute.objects.create(
                organisation=organisation, revenue_code=row, reason=f"revenue code {row.code} remapped",
                from_jurisdiction=old, to_jurisdiction=jurisdiction,
            )
    row.save()
    audit_record(organisation=organisation, actor=actor, action="revenue_code.updated", object_type="revenue_code",
                 object_id=row.id, before=before, after=_revenue_code_snapshot(row.id))
    if recompute is not None:
        _enqueue_recompute(recompute.id)
    return row, recompute


def revenue_code_archive(*, organisation: Organisation, actor: Actor, revenue_code_id: str) -> RevenueCode:
    """Archived codes leave autofill; gifts already coded keep counting under the mapping,
    and a new gift with the code is still counted (dropping it would under-count)."""
    row, _ = revenue_code_update(organisation=organisation, actor=actor, revenue_code_id=revenue_code_id, status=RevenueCodeStatus.ARCHIVED)
    return row


def _enqueue_recompute(recompute_id: str) -> None:
    # By name: compliance/tasks.py calls this module.
    transaction.on_commit(lambda: task_send("compliance.tasks.compliance_recompute", recompute_id))


def regime_rule_changed(*, jurisdictions: set[str], reason: str) -> list[str]:
    """After a superuser adds or edits a rule: every organisation with gifts in
    these jurisdictions gets a background recompute (aggregates, alert levels,
    obligations; a donor now past a cap raises a breach). Returns the Recompute ids."""
    ids = []
    org_ids = set(Donation.objects.filter(jurisdiction__in=jurisdictions).values_list("organisation_id", flat=True).distinct())
    for organisation in Organisation.objects.filter(pk__in=org_ids).order_by("pk"):
        for jurisdiction in sorted(jurisdictions):
            recompute = Recompute.objects.create(organisation=organisation, reason=reason[:200],
                                                 from_jurisdiction=jurisdiction, to_jurisdiction=jurisdiction)
            _enqueue_recompute(recompute.id)
            ids.append(recompute.id)
    return ids


def recompute_run(*, recompute_id: str) -> Recompute:
    """Apply a remap to the ledger, then recompute every affected donor, each
    under its own lock. Reports what changed on the Recompute row.

    Three kinds: a code remapped (revenue_code set), the default jurisdiction
    changed (no code, from ≠ to: code-less gifts move), a rule changed (no code,
    from = to: nothing moves, every donor with gifts in the jurisdiction is recomputed)."""
    recompute = Recompute.objects.select_related("organisation", "revenue_code").get(pk=recompute_id)
    if recompute.status == RemapStatus.COMPLETED:
        return recompute
    organisation = recompute.organisation
    settings_row = compliance_settings_get(organisation=organisation)
    donations = Donation.objects.for_organisation(organisation)
    rule_change = recompute.revenue_code_id is None and recompute.from_jurisdiction == recompute.to_jurisdiction
    if recompute.revenue_code_id:
        code = recompute.revenue_code
        scope = donations.filter(revenue_code__iexact=code.code_lower)
        target = code.jurisdiction
    elif rule_change:
        target = recompute.to_jurisdiction
        scope = donations.filter(jurisdiction=target)
    else:
        scope = donations.filter(revenue_code__isnull=True)
        target = settings_row.default_jurisdiction
    if rule_change:
        donor_ids = sorted(set(scope.values_list("donor_id", flat=True)))
    else:
        donor_ids = sorted(set(scope.exclude(jurisdiction=target).values_list("donor_id", flat=True)))
    try:
        return _recompute_apply(recompute, organisation, scope, target, donor_ids, rule_change)
    except Exception:
        # Each donor was recomputed in its own transaction: say it stopped, so
        # that a re-run (which carries on where it stopped) is visibly needed.
        Recompute.objects.filter(pk=recompute.pk).update(status=RemapStatus.FAILED)
        raise


def _recompute_apply(recompute: Recompute, organisation: Organisation, scope, target: str, donor_ids: list[str],
                     rule_change: bool) -> Recompute:
    totals = Counts()
    affected = 0
    for donor_id in donor_ids:
        with transaction.atomic():
            if not Donor.objects.select_for_update().filter(pk=donor_id).exists():
                continue
            if rule_change:
                affected += scope.filter(donor_id=donor_id).count()
            else:
                affected += scope.filter(donor_id=donor_id).exclude(jurisdiction=target).update(jurisdiction=target, updated_at=timezone.now())
            totals += donor_compliance_recompute(organisation=organisation, donor_id=donor_id, after_the_fact=True)
    Recompute.objects.filter(pk=recompute.pk).update(
        status=RemapStatus.COMPLETED, donations_affected=affected, donors_affected=len(donor_ids),
        obligations_created=totals.obligations_created, obligations_cancelled=totals.obligations_cancelled,
        breaches_created=totals.breaches_created, completed_at=timezone.now(),
    )
    recompute.refresh_from_db()
    return recompute


@dataclass
class Prepared:
    """What donation_compliance_prepare read under the donor's lock, for the same
    transaction's recompute: the organisation's context and the donor's ledger
    before the change (None when the gift counts nothing and was not new)."""

    context: ComplianceContext
    ledger: "DonorLedger | None"


def donation_compliance_prepare(*, organisation: Organisation, donor: Donor, before: Donation | None, after: Donation,
                                ledger: "DonorLedger | None" = None, resolved: dict | None = None) -> Prepared:
    """Called with the donor row locked, before the gift is saved: stamp its
    jurisdiction and refuse it if it would take the donor past a cap.

    For a batch of new gifts (donations_record_many): `ledger`, the donor's ledger
    as the batch has it so far (read under the lock, with the batch's gifts accepted
    before this one), and `resolved`, the codes the batch already resolved (their rows
    stay share-locked until the commit), by lower-case code."""
    code_changed = before is None or (before.revenue_code or "").lower() != (after.revenue_code or "").lower()
    if code_changed or not after.jurisdiction:
        key = (after.revenue_code or "").lower()
        if resolved is not None and key in resolved:
            after.jurisdiction, context = resolved[key]
        else:
            after.jurisdiction, context = _resolve(organisation, after.revenue_code)
            if resolved is not None:
                resolved[key] = (after.jurisdiction, context)
    else:
        context = compliance_context(organisation=organisation, share_lock=False)
    if not rules.counts(after):
        if before is None and ledger is None:
            ledger = donor_ledger_read(donor.id)
        return Prepared(context=context, ledger=ledger if before is None else None)
    if ledger is None:
        ledger = donor_ledger_read(donor.id)
    adding = rules.counted_cents(after)
    refusing = []
    for room in rules.cap_rooms(donor_id=donor.id, jurisdiction=after.jurisdiction, day=after.donation_date,
                                exclude_id=after.pk if before is not None else None, ledger=ledger.gifts,
                                by_jurisdiction=context.by_jurisdiction):
        if room["total"] + adding <= room["cap"]:
            continue
        start, end = room["period"]
        # An edit that adds nothing to this period's total (notes, a lower amount) is
        # not refused: the donor is already over (a remap raised a breach), and
        # refusing would only block the fix.
        if (before is not None and rules.counts(before) and before.donor_id == donor.id
                and before.jurisdiction == after.jurisdiction and start <= before.donation_date <= end
                and adding <= rules.counted_cents(before)):
            continue
        refusing.append(room)
    room = rules.tightest(refusing)
    if room is not None:
        start, end = room["period"]
        raise CapExceeded(
            f"This gift of {_money(after.amount_cents)} would take the donor past the {after.jurisdiction} cap of "
            f"{_money(room['cap'])} for {start.isoformat()} to {end.isoformat()}: {_money(room['remaining'])} remains.",
            param="amount_cents",
            reason="donor_cap_exceeded",
            remaining_cents=room["remaining"],
        )
    return Prepared(context=context, ledger=ledger)


# --- a donor's ledger, read once ---------------------------------------------------------

@dataclass(frozen=True)
class LedgerGift:
    id: str
    jurisdiction: str | None
    day: dt.date
    counted: int
    kind: str
    created_at: dt.datetime

    def order(self):
        return (self.day, self.created_at, self.id)


@dataclass
class DonorLedger:
    """A donor's counted gifts (what counts: rules.COUNTED, rules.COUNTED_CENTS), in
    date order, with its aggregates and live obligations: everything a recompute
    reads, in one query, under the donor's lock."""

    donor_id: str
    gifts: list[LedgerGift]
    aggregates: list[DonorAggregate]
    obligations: list[DisclosureObligation]

    def with_gift(self, donation: Donation) -> "DonorLedger":
        """The ledger after `donation` (just inserted, under the same lock) was added."""
        return self.with_gifts([donation])

    def with_gifts(self, donations: list[Donation]) -> "DonorLedger":
        """The ledger after these gifts of the donor were added (a gift not yet saved is
        placed as if saved now: after every gift of its date already in the books)."""
        now = timezone.now()
        added = [
            LedgerGift(id=d.id, jurisdiction=d.jurisdiction, day=d.donation_date, counted=rules.counted_cents(d),
                       kind=d.donation_type, created_at=d.created_at or now)
            for d in donations if rules.counts(d)
        ]
        if not added:
            return self
        return DonorLedger(donor_id=self.donor_id, gifts=sorted([*self.gifts, *added], key=LedgerGift.order),
                           aggregates=self.aggregates, obligations=self.obligations)

    def totals(self) -> tuple[int, int]:
        """The donor's stored totals as the ledger says: counted cents, counted gifts."""
        return sum(g.counted for g in self.gifts), len(self.gifts)


def _json_rows(value) -> list[dict]:
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _instances(model, rows: list[dict]) -> list:
    fields = model._meta.concrete_fields
    names = [f.attname for f in fields]
    return [model.from_db("default", names, [f.to_python(row[f.column]) for f in fields]) for row in rows]


def donor_ledger_read(donor_id: str) -> DonorLedger:
    """The donor's ledger (one query). The caller holds the donor's lock."""
    return donor_ledgers_read([donor_id])[donor_id]


_DONOR_IDS = object()  # where the donor ids go in _ledgers_statement's parameters


@functools.cache
def _ledgers_statement(one: bool = False) -> tuple[str, tuple]:
    """donor_ledgers_read's statement, compiled once per process (the ORM's compile was
    a tenth of a gift's CPU): what counts is rules.COUNTED and rules.COUNTED_CENTS as
    the ORM writes them; the donor ids are one array parameter (`= ANY`), or with `one`
    the one donor's id (`=`): PostgreSQL keeps that statement's generic plan, where an
    array's it plans again on every run (0.3 ms of a gift's create)."""
    gifts_sql, gifts_params = (
        Donation.objects.filter(rules.COUNTED).annotate(counted=rules.COUNTED_CENTS)
        .values("id", "donor_id", "jurisdiction", "donation_date", "counted", "donation_type", "created_at").order_by()
        .query.sql_with_params()
    )
    table = Donation._meta.db_table
    select, where, condition = gifts_sql.partition(" WHERE ")  # no ORDER BY, no LIMIT: the condition ends the statement
    match = "= %s" if one else "= ANY(%s)"
    gifts_sql = f'{select} WHERE "{table}"."donor_id" {match}' + (f" AND ({condition})" if where else "")
    head, _, tail = gifts_sql.partition(f'"{table}"."donor_id" {match}')
    # The parameters before the ids are the SELECT's (COUNTED_CENTS), the rest the WHERE's.
    before = head.count("%s")
    sql = (
        # As text, parsed by orjson (_json_rows): psycopg would parse `json` with the standard library's json.
        f"SELECT (SELECT json_agg(g)::text FROM ({gifts_sql}) g), "
        f"(SELECT json_agg(a)::text FROM {DonorAggregate._meta.db_table} a WHERE a.donor_id {match}), "
        f"(SELECT json_agg(o)::text FROM {DisclosureObligation._meta.db_table} o WHERE o.donor_id {match} AND o.status <> %s)"
    )
    params = (*gifts_params[:before], _DONOR_IDS, *gifts_params[before:], _DONOR_IDS, _DONOR_IDS, ObligationStatus.CANCELLED)
    return sql, params


def donor_ledgers_read(donor_ids: list[str]) -> dict[str, DonorLedger]:
    """The ledgers of these donors, in one query. The caller holds their locks."""
    donor_ids = sorted(set(donor_ids))
    one = len(donor_ids) == 1
    sql, params = _ledgers_statement(one)
    params = [(donor_ids[0] if one else donor_ids) if p is _DONOR_IDS else p for p in params]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        gifts, aggregates, obligations = cursor.fetchone()
    ledgers = {donor_id: DonorLedger(donor_id=donor_id, gifts=[], aggregates=[], obligations=[]) for donor_id in donor_ids}
    for g in _json_rows(gifts):
        ledgers[g["donor_id"]].gifts.append(LedgerGift(
            id=g["id"], jurisdiction=g["jurisdiction"], day=dt.date.fromisoformat(g["donation_date"]), counted=g["counted"],
            kind=g["donation_type"], created_at=dt.datetime.fromisoformat(g["created_at"])))
    for a in _instances(DonorAggregate, _json_rows(aggregates)):
        ledgers[a.donor_id].aggregates.append(a)
    for o in _instances(DisclosureObligation, _json_rows(obligations)):
        ledgers[o.donor_id].obligations.append(o)
    for ledger in ledgers.values():
        ledger.gifts.sort(key=LedgerGift.order)
        ledger.obligations.sort(key=lambda o: (o.created_at, o.id))
    return ledgers


# --- recomputation ------------------------------------------------------------------

@dataclass
class Counts:
    obligations_created: int = 0
    obligations_cancelled: int = 0
    breaches_created: int = 0

    def __iadd__(self, other: "Counts") -> "Counts":
        self.obligations_created += other.obligations_created
        self.obligations_cancelled += other.obligations_cancelled
        self.breaches_created += other.breaches_created
        return self


@dataclass
class _Bucket:
    rule: RegimeRule
    jurisdiction: str
    start: dt.date
    end: dt.date
    total: int = 0
    monetary: int = 0
    in_kind: int = 0
    count: int = 0
    crossed_on: dt.date | None = None
    crossing_donation_id: str | None = None
    gifts: list = field(default_factory=list)


def _set_alert(organisation: Organisation, aggregate: DonorAggregate, level: str, save: bool = True) -> None:
    old = aggregate.alert_level
    aggregate.alert_level = level
    if save:
        aggregate.save(update_fields=["alert_level", "updated_at"])
    event_record(
        organisation=organisation, actor=COMPLIANCE_ACTOR, type="donor_cap_alert.changed", object_type="donor",
        object_id=aggregate.donor_id,
        before={"alert_level": old},
        after={
            "object": "donor_cap_alert", "donor_id": aggregate.donor_id, "jurisdiction": aggregate.jurisdiction,
            "period_start": aggregate.period_start.isoformat(), "period_end": aggregate.period_end.isoformat(),
            "total_cents": aggregate.total_cents, "cap_cents": aggregate.rule.cap_cents,
            "cap_remaining_cents": rules.remaining_cents(aggregate.rule.cap_cents, aggregate.total_cents),
            "alert_level": level, "previous_alert_level": old,
        },
    )


def due_date_for(*, organisation: Organisation, rule: RegimeRule, gift_date: dt.date, period_end: dt.date) -> tuple[dt.date, str]:
    """When a disclosure falls due, from the rule and the organisation's election periods."""
    if rule.election_deadlines:
        best = None
        for election in ElectionPeriod.objects.for_organisation(organisation).filter(
            jurisdiction=rule.jurisdiction, writ_date__lte=gift_date
        ):
            if gift_date > election.end_date:
                continue
            if gift_date >= election.final_week_start:
                candidate = (gift_date + dt.timedelta(days=1), "ELECTION_FINAL_WEEK_24_HOURS")
            else:
                candidate = (gift_date + dt.timedelta(days=7), "ELECTION_PERIOD_7_DAYS")
            if best is None or candidate[0] < best[0]:
                best = candidate
        if best is not None:
            return best
    if rule.deadline_rule == DeadlineRule.WITHIN_DAYS:
        return gift_date + dt.timedelta(days=rule.deadline_days or 7), f"WITHIN_{rule.deadline_days or 7}_DAYS"
    if rule.deadline_rule == DeadlineRule.NEXT_MONTH_DAY:
        year, month = (gift_date.year + 1, 1) if gift_date.month == 12 else (gift_date.year, gift_date.month + 1)
        day = min(rule.deadline_day or 21, calendar.monthrange(year, month)[1])
        return dt.date(year, month, day), "NEXT_MONTH_DAY"
    # Annual return: the first deadline day after the period's natural end.
    month, day = rule.deadline_month or 10, rule.deadline_day or 31
    candidate = dt.date(period_end.year, month, day)
    if candidate <= period_end:
        candidate = dt.date(period_end.year + 1, month, day)
    return candidate, "ANNUAL_RETURN"


@dataclass
class AggregateWrites:
    """The aggregates a batch's recomputes create and change, written together by
    `flush` (one INSERT, one UPDATE) once every donor of the batch is recomputed."""

    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)

    COLUMNS = (("jurisdiction", "text"), ("period_end", "date"), ("total_cents", "bigint"), ("monetary_cents", "bigint"),
               ("in_kind_cents", "bigint"), ("donations_count", "integer"), ("alert_level", "text"))

    def flush(self) -> None:
        now = timezone.now()
        if self.created:
            insert_rows(self.created)
        if self.updated:
            rows = [[a.pk, *(getattr(a, name) for name, _ in self.COLUMNS)] for a in self.updated]
            if len(rows) >= UNNEST_FROM_ROWS:
                params = [list(column) for column in zip(*rows)]
            else:
                params = [value for row in rows for value in row]
            execute_batched(_aggregates_update(len(rows)), [now, *params])
            for aggregate in self.updated:
                aggregate.updated_at = now
        self.created, self.updated = [], []


@functools.cache
def _aggregates_update(rows: int) -> str:
    """The UPDATE of `rows` aggregates: from one array per column (`unnest`) for many, from a
    VALUES list for a few. A gift changes one or two aggregates, and its batched write is
    prepared: PostgreSQL plans a prepared statement once (generic plan) only when that plan
    costs no more than planning each run. It takes an array parameter for 10 rows, so with
    `unnest` the one-row join on the aggregates cost ten index scans and the gift's whole
    write was planned again on every create (0.6 to 0.9 ms of PostgreSQL's CPU); a VALUES
    list says how many rows it holds."""
    table = DonorAggregate._meta.db_table
    columns = (("id", "text"), *AggregateWrites.COLUMNS)
    names = ", ".join(name for name, _ in columns)
    sets = ", ".join(f"{name} = v.{name}" for name, _ in AggregateWrites.COLUMNS)
    if rows >= UNNEST_FROM_ROWS:
        source = "unnest(" + ", ".join(f"%s::{kind}[]" for _, kind in columns) + ")"
    else:
        row = "(" + ", ".join(f"%s::{kind}" for _, kind in columns) + ")"
        source = "(VALUES " + ", ".join([row] * rows) + ")"
    return f"UPDATE {table} AS t SET {sets}, updated_at = %s FROM {source} AS v({names}) WHERE t.id = v.id"


def donor_compliance_recompute(*, organisation: Organisation, donor_id: str, after_the_fact: bool = False,
                               context: ComplianceContext | None = None, ledger: DonorLedger | None = None,
                               writes: AggregateWrites | None = None) -> Counts:
    """Rebuild a donor's aggregates from the ledger and reconcile obligations,
    alert levels and breaches with them. The caller holds the donor's lock.
    `context` and `ledger`: what the same transaction already read under that lock
    (the ledger as it is now, the change included); read here when not given."""
    counts = Counts()
    if context is None:
        context = compliance_context(organisation=organisation, share_lock=False)
    settings_row, by_jurisdiction = context.settings_row, context.by_jurisdiction
    if ledger is None:
        ledger = donor_ledger_read(donor_id)
    rules_by_id = {rule.id: rule for group in by_jurisdiction.values() for rule in group}
    # Only jurisdictions with rules can make aggregates: an UNREGULATED gift costs nothing here.
    gifts = [(g.id, g.jurisdiction, g.day, g.counted, g.kind) for g in ledger.gifts if g.jurisdiction in by_jurisdiction]
    buckets: dict[tuple, _Bucket] = {}
    for gift_id, jurisdiction, day, amount, kind in gifts:
        for rule in by_jurisdiction.get(jurisdiction, ()):
            if not rules.applies_on(rule, day):
                continue
            start, end = rules.rule_period(rule, day)
            bucket = buckets.setdefault((rule.id, start), _Bucket(rule=rule, jurisdiction=jurisdiction, start=start, end=end))
            was_over = rules.passes_threshold(rule, bucket.total)
            bucket.total += amount
            bucket.count += 1
            if kind == DonationType.IN_KIND:
                bucket.in_kind += amount
            else:
                bucket.monetary += amount
            if not was_over and rules.passes_threshold(rule, bucket.total):
                bucket.crossed_on, bucket.crossing_donation_id = day, gift_id
    # Aggregates: upsert what exists, drop what no longer does.
    existing = {}
    for a in ledger.aggregates:
        if a.rule_id in rules_by_id:
            a.rule = rules_by_id[a.rule_id]
        existing[(a.rule_id, a.period_start)] = a
    for key, bucket in buckets.items():
        aggregate = existing.pop(key, None)
        values = dict(jurisdiction=bucket.jurisdiction, period_end=bucket.end, total_cents=bucket.total,
                      monetary_cents=bucket.monetary, in_kind_cents=bucket.in_kind, donations_count=bucket.count)
        level = rules.alert_level(bucket.total, bucket.rule.cap_cents, settings_row)
        if aggregate is None:
            aggregate = DonorAggregate(organisation=organisation, donor_id=donor_id, rule=bucket.rule,
                                       period_start=bucket.start, **values)
            if writes is None:
                aggregate.save(force_insert=True)
            else:  # written with the batch's other donors' (AggregateWrites.flush), its alert level with it
                writes.created.append(aggregate)
        elif any(getattr(aggregate, k) != v for k, v in values.items()) or (writes is not None and level != aggregate.alert_level):
            for k, v in values.items():
                setattr(aggregate, k, v)
            if writes is None:
                aggregate.save()
            else:
                writes.updated.append(aggregate)
        if level != aggregate.alert_level:
            _set_alert(organisation, aggregate, level, save=writes is None)
        if bucket.rule.cap_cents is not None and bucket.total > bucket.rule.cap_cents:
            counts.breaches_created += _breach_if_new(organisation, donor_id, bucket, after_the_fact)
    for stale in existing.values():
        if stale.alert_level != AlertLevel.NONE:
            stale.total_cents = 0
            _set_alert(organisation, stale, AlertLevel.NONE)
        stale.delete()
    # Obligations: one live obligation per donor, jurisdiction and period.
    live = {}  # per key, the OPEN obligation if there is one, else a LODGED one
    for o in ledger.obligations:
        key = (o.jurisdiction, o.period_start, o.period_end)
        if key not in live or o.status == ObligationStatus.OPEN:
            live[key] = o
    due_keys = set()
    for bucket in buckets.values():
        if not rules.passes_threshold(bucket.rule, bucket.total):
            continue
        key = (bucket.jurisdiction, bucket.start, bucket.end)
        due_keys.add(key)
        obligation = live.get(key)
        if obligation is None:
            due, basis = due_date_for(organisation=organisation, rule=bucket.rule, gift_date=bucket.crossed_on, period_end=bucket.end)
            obligation = DisclosureObligation.objects.create(
                organisation=organisation, donor_id=donor_id, rule=bucket.rule, jurisdiction=bucket.jurisdiction,
                period_start=bucket.start, period_end=bucket.end, threshold_cents=bucket.rule.threshold_cents,
                aggregate_cents=bucket.total, crossed_on=bucket.crossed_on, crossing_donation_id=bucket.crossing_donation_id,
                due_date=due, deadline_basis=basis,
            )
            counts.obligations_created += 1
            event_record(organisation=organisation, actor=COMPLIANCE_ACTOR, type="disclosure_obligation.created",
                         object_type="disclosure_obligation", object_id=obligation.id, after=obligation_snapshot(obligation.id))
        elif obligation.aggregate_cents != bucket.total:
            before = obligation_snapshot(obligation.id)
            obligation.aggregate_cents = bucket.total
            obligation.save(update_fields=["aggregate_cents", "updated_at"])
            event_record(organisation=organisation, actor=COMPLIANCE_ACTOR, type="disclosure_obligation.updated",
                         object_type="disclosure_obligation", object_id=obligation.id, before=before,
                         after=obligation_snapshot(obligation.id))
    for key, obligation in live.items():
        if key in due_keys or obligation.status != ObligationStatus.OPEN:
            continue
        counts.obligations_cancelled += _cancel_obligation(organisation, obligation, "no longer above the threshold (refund, void, merge or remap)")
    return counts


def _cancel_obligation(organisation: Organisation, obligation: DisclosureObligation, reason: str) -> int:
    before = obligation_snapshot(obligation.id)
    obligation.status = ObligationStatus.CANCELLED
    obligation.cancelled_reason = reason[:200]
    obligation.cancelled_at = timezone.now()
    obligation.save(update_fields=["status", "cancelled_reason", "cancelled_at", "updated_at"])
    event_record(organisation=organisation, actor=COMPLIANCE_ACTOR, type="disclosure_obligation.updated",
                 object_type="disclosure_obligation", object_id=obligation.id, before=before, after=obligation_snapshot(obligation.id))
    return 1


def _breach_if_new(organisation: Organisation, donor_id: str, bucket: _Bucket, after_the_fact: bool) -> int:
    already = ComplianceBreach.objects.filter(
        donor_id=donor_id, rule=bucket.rule, period_start=bucket.start, aggregate_cents__gte=bucket.total
    ).exists()
    if already:
        return 0
    breach = ComplianceBreach.objects.create(
        organisation=organisation, donor_id=donor_id, rule=bucket.rule, jurisdiction=bucket.jurisdiction,
        period_start=bucket.start, period_end=bucket.end, cap_cents=bucket.rule.cap_cents, aggregate_cents=bucket.total,
        excess_cents=bucket.total - bucket.rule.cap_cents,
        reason="cap exceeded by a change after the fact (remap, rule or merge)" if after_the_fact else "cap exceeded",
    )
    event_record(organisation=organisation, actor=COMPLIANCE_ACTOR, type="compliance_breach.created",
                 object_type="compliance_breach", object_id=breach.id,
                 after=render_breach(ComplianceBreach.objects.filter(pk=breach.pk).values(*BREACH_FIELDS).get()))
    return 1


def obligation_snapshot(obligation_id: str) -> dict:
    return render_obligation(DisclosureObligation.objects.filter(pk=obligation_id).values(*OBLIGATION_FIELDS).get())


# --- merge ------------------------------------------------------------------------------

def donor_merge_compliance(*, organisation: Organisation, survivor: Donor, duplicate: Donor) -> None:
    """Inside donor_merge (both rows locked): obligations and breaches move to the
    survivor; one made moot by an existing survivor obligation is cancelled."""
    survivor_keys = set(
        DisclosureObligation.objects.filter(donor=survivor).exclude(status=ObligationStatus.CANCELLED)
        .values_list("jurisdiction", "period_start", "period_end")
    )
    for obligation in DisclosureObligation.objects.filter(donor=duplicate).order_by("created_at"):
        key = (obligation.jurisdiction, obligation.period_start, obligation.period_end)
        if obligation.status == ObligationStatus.OPEN and key in survivor_keys:
            _cancel_obligation(organisation, obligation, f"moot after merge into donor {survivor.id}")
        elif obligation.status != ObligationStatus.CANCELLED:
            survivor_keys.add(key)
        DisclosureObligation.objects.filter(pk=obligation.pk).update(donor=survivor)
    ComplianceBreach.objects.filter(donor=duplicate).update(donor=survivor)
    DonorAggregate.objects.filter(donor=duplicate).delete()


# --- obligations, elections ------------------------------------------------------------

@transaction.atomic
def obligation_lodge(*, organisation: Organisation, actor: Actor, obligation_id: str, reference: str, lodged_date: dt.date) -> DisclosureObligation:
    obligation = DisclosureObligation.objects.for_organisation(organisation).select_for_update().filter(pk=obligation_id).first()
    if obligation is None:
        raise NotFound("Disclosure obligation not found.")
    reference = (reference or "").strip()
    if not reference:
        raise ValidationFailed("A lodgement reference is required.", param="reference")
    obligation.guard("lodge")
    if lodged_date > timezone.localdate():
        raise ValidationFailed("lodged_date cannot be in the future.", param="lodged_date")
    before = obligation_snapshot(obligation.id)
    obligation.status = ObligationStatus.LODGED
    obligation.lodged_reference = reference
    obligation.lodged_date = lodged_date
    obligation.save(update_fields=["status", "lodged_reference", "lodged_date", "updated_at"])
    event_record(organisation=organisation, actor=actor, type="disclosure_obligation.updated", object_type="disclosure_obligation",
                 object_id=obligation.id, before=before, after=obligation_snapshot(obligation.id))
    return obligation


@transaction.atomic
def election_period_create(*, organisation: Organisation, actor: Actor, election_type: str, name: str, writ_date: dt.date,
                           polling_date: dt.date, jurisdiction: str = Jurisdiction.FEDERAL) -> ElectionPeriod:
    name = _election_clean(election_type=election_type, name=name, writ_date=writ_date, polling_date=polling_date,
                           jurisdiction=jurisdiction)
    election = ElectionPeriod.objects.create(organisation=organisation, election_type=election_type, name=name,
                                             writ_date=writ_date, polling_date=polling_date, jurisdiction=jurisdiction)
    audit_record(organisation=organisation, actor=actor, action="election_period.created", object_type="election_period",
                 object_id=election.id, after=render_election(ElectionPeriod.objects.filter(pk=election.pk).values(*ELECTION_FIELDS).get()))
    return election


def _election_clean(*, election_type: str, name: str, writ_date: dt.date, polling_date: dt.date, jurisdiction: str) -> str:
    from compliance.models import ElectionType

    if election_type not in ElectionType.values:
        raise ValidationFailed("election_type is not a known type.", param="election_type")
    if jurisdiction not in Jurisdiction.values or jurisdiction == Jurisdiction.UNREGULATED:
        raise ValidationFailed("jurisdiction must be FEDERAL or a state or territory.", param="jurisdiction")
    if not (name or "").strip():
        raise ValidationFailed("An election period needs a name.", param="name")
    if polling_date < writ_date:
        raise ValidationFailed("polling_date must be on or after writ_date.", param="polling_date")
    return name.strip()


@transaction.atomic
def election_period_update(*, organisation: Organisation, actor: Actor, election_period_id: str, **changes) -> ElectionPeriod:
    """Correct an election period (the same rules as election_period_create)."""
    unknown = set(changes) - {"election_type", "name", "writ_date", "polling_date", "jurisdiction"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]} cannot be changed.", param=sorted(unknown)[0])
    election = ElectionPeriod.objects.for_organisation(organisation).select_for_update().filter(pk=election_period_id).first()
    if election is None:
        raise NotFound("Election period not found.")
    before = render_election(ElectionPeriod.objects.filter(pk=election.pk).values(*ELECTION_FIELDS).get())
    values = {k: changes.get(k, getattr(election, k)) for k in ("election_type", "name", "writ_date", "polling_date", "jurisdiction")}
    values["name"] = _election_clean(**values)
    for key, value in values.items():
        setattr(election, key, value)
    election.save()
    audit_record(organisation=organisation, actor=actor, action="election_period.updated", object_type="election_period",
                 object_id=election.id, before=before,
                 after=render_election(ElectionPeriod.objects.filter(pk=election.pk).values(*ELECTION_FIELDS).get()))
    return election


@transaction.atomic
def regime_rule_save(*, rule: RegimeRule, actor: Actor) -> RegimeRule:
    """Add or edit one of the law's rules (platform staff). A rule changed after
    the fact is never silently accepted: every organisation with gifts under it,
    in its old and new jurisdiction, is recomputed (breaches, obligations)."""
    adding = rule._state.adding
    old = None if adding else RegimeRule.objects.filter(pk=rule.pk).values_list("jurisdiction", flat=True).first()
    rule.save()
    regime_rule_changed(jurisdictions={rule.jurisdiction, old} - {None},
                        reason=f"regime rule {'added' if adding else 'edited'}: {rule.name}")
    return rule


@transaction.atomic
def election_period_delete(*, organisation: Organisation, actor: Actor, election_period_id: str) -> None:
    """Remove an election period entered in error (audited)."""
    election = ElectionPeriod.objects.for_organisation(organisation).select_for_update().filter(pk=election_period_id).first()
    if election is None:
        raise NotFound("Election period not found.")
    before = render_election(ElectionPeriod.objects.filter(pk=election.pk).values(*ELECTION_FIELDS).get())
    election.delete()
    audit_record(organisation=organisation, actor=actor, action="election_period.deleted", object_type="election_period",
                 object_id=election_period_id, before=before)

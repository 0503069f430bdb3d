"""The reports, as a registry of exporters (compare pretix's ListExporter).

An exporter declares its columns (name, kind, help) and builds one SELECT for a
validated `ReportSpec`; the same SELECT feeds PostgreSQL's COPY for CSV and a
server-side cursor for XLSX (`reports.writers`). Every SELECT is parameterised
by the organisation's id: a report never reads another organisation's rows,
nor the sandbox twin's.

Common rules (also in the OpenAPI description of /api/v1/reports/{name}):
- money columns come in pairs, `…_cents` (integer) and `…_dollars` (two decimals);
- dates are `YYYY-MM-DD`, timestamps ISO 8601 UTC with milliseconds and `Z`;
- text cells beginning with `=`, `+`, `-`, `@`, a tab or a carriage return are
  prefixed with a single quote; numbers are never altered;
- `from` and `to` (inclusive dates) default to the current financial year
  (1 July – 30 June, Australia/Sydney).

What counts, the rule in force and the periods are `compliance.rules`' answers;
the disclosure return lists the donors with a recorded disclosure obligation.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Mapping

from django.db import connection
from django.db.models import Case, CharField, Count, DateField, F, Q, QuerySet, Sum, When
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from compliance import rules
from compliance.models import DisclosureObligation, Jurisdiction, ObligationStatus, PeriodKind, RegimeRule, ComplianceBreach
from donations.api.filters import CampaignFilterSet, DonationFilterSet, DonorFilterSet
from donations.models import Campaign, Donation, DonationType, Donor, InKindCategory, Status
from organisations.models import Organisation
from reports.sql import Dollars, IsoTimestamp, Neutralised, SqlTemplate, dollars_sql, iso_timestamp_sql, neutralise_sql
from together.api.filters import accepts_dynamic
from together.exceptions import InvalidRequest, NotFound, ValidationFailed

KINDS = {
    "text": "text (neutralised against formula injection)",
    "code": "text: an id or an upper-case code",
    "integer": "integer",
    "cents": "integer, cents",
    "dollars": "decimal, dollars with two decimals",
    "date": "date, YYYY-MM-DD",
    "timestamp": "timestamp, ISO 8601 UTC with milliseconds and Z",
    "month": "month, YYYY-MM",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    help: str
    # The ORM expression of query-set exporters (wrapped per kind); raw-SQL exporters leave it None.
    expression: Any = None

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        assert re.fullmatch(r"[a-z][a-z0-9_]*", self.name), self.name


@dataclass
class ReportSpec:
    """A validated report request: what to export, for whom, which rows."""

    exporter: "Exporter"
    organisation: Organisation
    date_from: dt.date
    date_to: dt.date
    filters: dict[str, str] = field(default_factory=dict)
    # Disclosure return: the jurisdiction, its aggregation period and the threshold rule.
    jurisdiction: str | None = None
    rule: RegimeRule | None = None
    # Admin actions: restrict to the selected rows, e.g. {"donation": <queryset of ids>}.
    restrict: dict[str, QuerySet] | None = None

    @property
    def params(self) -> dict[str, str]:
        """JSON-storable parameters that resolve to this spec again (export jobs)."""
        out = {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), **self.filters}
        if self.jurisdiction:
            out["jurisdiction"] = self.jurisdiction
        return out

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.exporter.columns_for(self)

    @property
    def period_label(self) -> str:
        return f"{self.date_from.isoformat()}_{self.date_to.isoformat()}"

    def file_name(self, fmt: str) -> str:
        parts = [self.organisation.slug, self.exporter.name]
        if self.jurisdiction:
            parts.append(self.jurisdiction)
        parts.append(self.period_label)
        return "_".join(parts) + f".{fmt}"


# --- dates ------------------------------------------------------------------------------------

def _check_in_range(day: dt.date, param: str) -> dt.date:
    """A report's dates lie where a gift's may (donations.services.DATE_MIN..DATE_MAX):
    beyond them no gift exists, and period arithmetic runs off the calendar at years 1 and 9999."""
    from donations.services import DATE_MAX, DATE_MIN

    if not DATE_MIN <= day <= DATE_MAX:
        raise ValidationFailed(f"{param}: must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}.", param=param)
    return day


def _parse_date(value: str | None, param: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        day = dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"{param}: enter a date as YYYY-MM-DD.", param=param) from None
    return _check_in_range(day, param)


# --- the registry -----------------------------------------------------------------------------

REGISTRY: dict[str, "Exporter"] = {}


def register(cls):
    exporter = cls()
    REGISTRY[exporter.name] = exporter
    return cls


def exporter_get(name: str) -> "Exporter":
    exporter = REGISTRY.get(name)
    if exporter is None:
        raise NotFound(f"No report named '{name}'. Reports: {', '.join(REGISTRY)}.")
    return exporter


class Exporter:
    name: str = ""
    title: str = ""
    description: str = ""
    columns: tuple[Column, ...] = ()
    # The matching list endpoint's filters (its FilterSet), applied as there.
    filterset_class = None
    extra_params: tuple[str, ...] = ()

    # -- parameters ----------------------------------------------------------
    def filter_names(self) -> list[str]:
        if self.filterset_class is None:
            return []
        return [name for name in self.filterset_class.get_filters() if name not in ("from", "to")]

    def allowed_params(self) -> set[str]:
        return {"from", "to", *self.extra_params, *self.filter_names()}

    def accepts_filter(self, name: str) -> bool:
        """A filter of the FilterSet, or one it adds per organisation (custom fields: `cf_<key>`)."""
        return name in self.filter_names() or (self.filterset_class is not None and accepts_dynamic(self.filterset_class, name))

    def columns_for(self, spec: "ReportSpec") -> tuple[Column, ...]:
        """The columns of this organisation's file: `columns`, plus any it defines (custom fields)."""
        return self.columns

    def resolve(self, *, organisation: Organisation, data: Mapping[str, str], restrict: dict | None = None) -> ReportSpec:
        """Validate `data` (query parameters) into a spec; errors name the parameter."""
        allowed = self.allowed_params()
        for name in data:
            if name not in allowed and not self.accepts_filter(name):
                raise InvalidRequest(f"Unknown parameter '{name}' for the {self.name} report.", param=name)
        date_from = _parse_date(data.get("from"), "from")
        date_to = _parse_date(data.get("to"), "to")
        if date_from is None or date_to is None:
            # The financial year of whichever bound was given, else the current one.
            fy_start, fy_end = rules.financial_year_of(date_from or date_to or timezone.localdate())
            date_from, date_to = date_from or fy_start, date_to or fy_end
        if date_to < date_from:
            raise ValidationFailed("to: must be on or after from.", param="to")
        filters = {name: str(data[name]) for name in data if name not in ("from", "to") and self.accepts_filter(name)
                   and data.get(name) not in (None, "")}
        spec = ReportSpec(exporter=self, organisation=organisation, date_from=date_from, date_to=date_to,
                          filters=filters, restrict=restrict)
        self.validate_filters(spec)
        return spec

    def validate_filters(self, spec: ReportSpec) -> None:
        if self.filterset_class is not None:
            self.filtered(spec, self.filter_base(spec))

    def filter_base(self, spec: ReportSpec) -> QuerySet:
        return self.filterset_class.Meta.model.objects.for_organisation(spec.organisation)

    def filtered(self, spec: ReportSpec, queryset: QuerySet) -> QuerySet:
        if self.filterset_class is None or not spec.filters:
            return queryset
        extra = {"organisation": spec.organisation} if getattr(self.filterset_class, "dynamic_filter_prefix", None) else {}
        filterset = self.filterset_class(data=spec.filters, queryset=queryset, **extra)
        if not filterset.is_valid():
            name, errors = next(iter(filterset.errors.items()))
            raise ValidationFailed(f"{name}: {' '.join(errors)}", param=name)
        return filterset.qs

    # -- the query -----------------------------------------------------------
    def query(self, spec: ReportSpec) -> tuple[str, list]:
        raise NotImplementedError

    def count_query(self, spec: ReportSpec) -> tuple[str, list]:
        sql, params = self.query(spec)
        return f"SELECT count(*) FROM ({sql}) AS report", params

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _expression(column: Column):
    expression = column.expression
    if isinstance(expression, str):
        expression = F(expression)
    if column.kind == "text":
        return Neutralised(expression)
    if column.kind == "dollars":
        return Dollars(expression)
    if column.kind == "timestamp":
        return IsoTimestamp(expression)
    return expression


def _compiled(queryset: QuerySet) -> tuple[str, list]:
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _renamed(columns: tuple[Column, ...], inner_sql: str, order: str = "") -> str:
    """Give the inner query's `c0`, `c1` … their published names."""
    select = ", ".join(f'report."c{i}" AS "{c.name}"' for i, c in enumerate(columns))
    return f"SELECT {select} FROM ({inner_sql}) AS report{order}"


class QuerySetExporter(Exporter):
    """An exporter whose rows are an ORM query set: filters come from the
    matching list endpoint's FilterSet, the SELECT from the columns' expressions."""

    def rows(self, spec: ReportSpec) -> QuerySet:
        raise NotImplementedError

    def order_terms(self, aliases: dict[str, str]) -> list[str]:
        """ORDER BY terms: a column's alias (`aliases[name]`) or a model field."""
        return []

    def query(self, spec: ReportSpec) -> tuple[str, list]:
        columns = self.columns_for(spec)
        values = {f"c{i}": _expression(c) for i, c in enumerate(columns)}
        aliases = {c.name: f"c{i}" for i, c in enumerate(columns)}
        queryset = self.rows(spec).values(**values).order_by(*self.order_terms(aliases))
        sql, params = _compiled(queryset)
        return _renamed(columns, sql), params


# --- donations -------------------------------------------------------------------------------

DONOR_NAME = SqlTemplate(
    "COALESCE(NULLIF(btrim(concat_ws(' ', {0}, {1})), ''), {2}, {3})",
    F("donor__first_name"), F("donor__last_name"), F("donor__organisation_name"), F("donor__email"),
)
IN_KIND_VALUE = Case(When(donation_type=DonationType.IN_KIND, then=F("amount_cents")))
IN_KIND_LABEL = SqlTemplate(
    "CASE {0} " + " ".join(f"WHEN '{value}' THEN '{label}'" for value, label in InKindCategory.choices) + " END",
    F("in_kind_category"),
)

DONOR_ADDRESS = (
    Column("donor_address_line1", "text", "Donor's address, line 1.", "donor__address_line1"),
    Column("donor_address_line2", "text", "Line 2.", "donor__address_line2"),
    Column("donor_suburb", "text", "Suburb.", "donor__suburb"),
    Column("donor_state", "text", "State.", "donor__state"),
    Column("donor_postcode", "text", "Postcode.", "donor__postcode"),
    Column("donor_country", "code", "ISO 3166-1 alpha-2.", "donor__country"),
)


def donor_columns(path: str) -> tuple:
    """Who the donor is, as every report names it: `path` leads from the report's rows
    to the donor ("donor__" from a gift, "" from the donor itself)."""
    return (
        Column("donor_id", "code", "The donor's id.", f"{path}id"),
        Column("donor_type", "code", "INDIVIDUAL, ORGANISATION, TRUST or UNKNOWN.", f"{path}donor_type"),
        Column("donor_name", "text", "First and last name, else the organisation name, else the email.", SqlTemplate(
            "COALESCE(NULLIF(btrim(concat_ws(' ', {0}, {1})), ''), {2}, {3})",
            F(f"{path}first_name"), F(f"{path}last_name"), F(f"{path}organisation_name"), F(f"{path}email"))),
        Column("donor_first_name", "text", "First name.", f"{path}first_name"),
        Column("donor_last_name", "text", "Last name.", f"{path}last_name"),
        Column("donor_organisation_name", "text", "Organisation or trust name.", f"{path}organisation_name"),
        Column("donor_email", "text", "Email.", f"{path}email"),
        Column("donor_phone", "text", "Phone.", f"{path}phone"),
        Column("donor_tags", "text", "The donor's tags, sorted, separated by \", \".",
               SqlTemplate("array_to_string({0}, ', ')", F(f"{path}tags"), output_field=CharField())),
        Column("donor_employer_id", "code", "The ORGANISATION donor this individual works for or gives through.",
               f"{path}employer_id"),
        *(Column(c.name, c.kind, c.help, path + c.expression.removeprefix("donor__")) for c in DONOR_ADDRESS),
    )


class DonationRowsExporter(QuerySetExporter):
    filterset_class = DonationFilterSet

    def base(self, spec: ReportSpec) -> QuerySet:
        queryset = Donation.objects.for_organisation(spec.organisation).filter(
            donation_date__gte=spec.date_from, donation_date__lte=spec.date_to)
        if spec.restrict and "donation" in spec.restrict:
            queryset = queryset.filter(pk__in=spec.restrict["donation"])
        if spec.restrict and "donor" in spec.restrict:
            queryset = queryset.filter(donor_id__in=spec.restrict["donor"])
        return self.filtered(spec, queryset)

    def filter_base(self, spec):
        return Donation.objects.for_organisation(spec.organisation)

    def rows(self, spec):
        return self.base(spec)

    def order_terms(self, aliases):
        # By gift date, then the raw timestamp (the published created_at is text), then id.
        return [aliases["donation_date"], "created_at", "id"]

    # Custom fields (issue 19): one column per field the organisation defines (archived ones
    # too: their values stay), after the fixed columns: `cf_<key>` for the gift's fields and,
    # where `donor_custom_columns`, `donor_cf_<key>` for its donor's.
    donor_custom_columns = False

    def columns_for(self, spec):
        from donations.custom_fields import custom_field_definitions

        extra = [custom_field_column(d, f"cf_{d['key']}", "custom_fields", "gift")
                 for d in custom_field_definitions(organisation=spec.organisation, applies_to="DONATION")]
        if self.donor_custom_columns:
            extra += [custom_field_column(d, f"donor_cf_{d['key']}", "donor__custom_fields", "donor")
                      for d in custom_field_definitions(organisation=spec.organisation, applies_to="DONOR")]
        return (*self.columns, *extra)


def custom_field_column(definition: dict, name: str, source: str, whose: str) -> Column:
    """A custom field's value as text (numbers as typed JSON numbers, booleans true/false,
    dates YYYY-MM-DD); TEXT and CHOICE values are neutralised like every text cell."""
    kind = "text" if definition["field_type"] in ("TEXT", "CHOICE") else "code"
    key = definition["key"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key  # a literal in the SQL: the key's own rule (KEY_RE)
    return Column(name, kind, f"The {whose}'s custom field {definition['label']} ({definition['field_type']}).",
                  SqlTemplate(f"({{0}} ->> '{key}')", F(source)))


@register
class DonationsExporter(DonationRowsExporter):
    name = "donations"
    title = "Donations"
    donor_custom_columns = True
    description = (
        "Every donation dated in the range (every status unless `status` is given), one row each, with its donor's "
        "name and address, campaign, revenue code and jurisdiction, in-kind details and lifecycle dates. "
        "Filters: those of GET /api/v1/donations (custom fields too: `cf_<key>`). After the columns below come the "
        "organisation's custom fields: `cf_<key>` for each gift field, then `donor_cf_<key>` for each donor field."
    )
    columns = (
        Column("donation_id", "code", "The donation's id.", "id"),
        Column("donation_date", "date", "The date the gift was made or received.", "donation_date"),
        Column("status", "code", "PENDING, CONFIRMED, FAILED, REFUNDED or VOIDED. Only CONFIRMED gifts count toward totals.", "status"),
        Column("donation_type", "code", "MONETARY or IN_KIND.", "donation_type"),
        Column("amount_cents", "cents", "The amount (for IN_KIND: the fair value).", "amount_cents"),
        Column("amount_dollars", "dollars", "The same amount in dollars.", "amount_cents"),
        Column("currency", "code", "ISO 4217.", "currency"),
        Column("source", "code", "MANUAL, STRIPE, CHECKOUT_LINK, NATIONBUILDER, RAISELY or GATEWAY.", "source"),
        Column("payment_method", "code", "CASH, CHEQUE, BANK_TRANSFER, CARD or OTHER; empty for IN_KIND.", "payment_method"),
        Column("reference", "text", "Receipt, cheque or bank reference.", "reference"),
        Column("campaign_id", "code", "The campaign's id, if any.", "campaign_id"),
        Column("campaign_name", "text", "The campaign's name.", "campaign__name"),
        Column("revenue_code", "text", "The revenue code as entered.", "revenue_code"),
        Column("jurisdiction", "code", "The jurisdiction the revenue code maps to (FEDERAL, NSW, VIC …).", "jurisdiction"),
        Column("source_code", "text", "Where the gift came from: your source code (an appeal, a mailing, a page's ?source=).", "source_code"),
        Column("referrer", "text", "Who or what referred the donor (a public page's ?ref=).", "referrer"),
        Column("utm_source", "text", "The utm_source of the link the donor followed.", "utm_source"),
        Column("utm_medium", "text", "The utm_medium of the link the donor followed.", "utm_medium"),
        Column("utm_campaign", "text", "The utm_campaign of the link the donor followed.", "utm_campaign"),
        *donor_columns("donor__"),
        Column("in_kind_category", "code", "GOODS, SERVICES, DISCOUNT, EXCESSIVE_PAYMENT or OTHER (IN_KIND only).", "in_kind_category"),
        Column("in_kind_description", "text", "What was given (IN_KIND only).", "in_kind_description"),
        Column("in_kind_valuation_method", "text", "How the fair value was set (IN_KIND only).", "in_kind_valuation_method"),
        Column("in_kind_fair_value_cents", "cents", "The fair value (IN_KIND only; equals amount_cents).", IN_KIND_VALUE),
        Column("in_kind_fair_value_dollars", "dollars", "The fair value in dollars.", IN_KIND_VALUE),
        Column("notes", "text", "Notes.", "notes"),
        Column("external_id", "text", "The id in the system the gift came from.", "external_id"),
        Column("metadata", "text", "Metadata, as JSON.", Cast("metadata", output_field=CharField())),
        Column("void_reason", "text", "Why it was voided.", "void_reason"),
        Column("voided_at", "timestamp", "When it was voided.", "voided_at"),
        Column("refund_date", "date", "The date of the refund.", "refund_date"),
        Column("refund_reason", "text", "Why it was refunded.", "refund_reason"),
        Column("refunded_at", "timestamp", "When the refund was recorded.", "refunded_at"),
        Column("created_at", "timestamp", "When the record was created.", "created_at"),
        Column("updated_at", "timestamp", "When the record last changed.", "updated_at"),
    )


@register
class InKindRegisterExporter(DonationRowsExporter):
    name = "in-kind-register"
    title = "In-kind register"
    description = (
        "Every in-kind gift dated in the range (every status unless `status` is given): category, description, fair "
        "value and how it was valued, donor and date. Filters: those of GET /api/v1/donations."
    )
    columns = (
        Column("donation_id", "code", "The donation's id.", "id"),
        Column("donation_date", "date", "The date the gift was made or received.", "donation_date"),
        Column("status", "code", "Only CONFIRMED gifts count toward totals.", "status"),
        Column("in_kind_category", "code", "GOODS, SERVICES, DISCOUNT, EXCESSIVE_PAYMENT or OTHER.", "in_kind_category"),
        Column("in_kind_category_label", "text", "The category in words.", IN_KIND_LABEL),
        Column("in_kind_description", "text", "What was given.", "in_kind_description"),
        Column("fair_value_cents", "cents", "Open-market fair value.", "amount_cents"),
        Column("fair_value_dollars", "dollars", "The fair value in dollars.", "amount_cents"),
        Column("currency", "code", "ISO 4217.", "currency"),
        Column("in_kind_valuation_method", "text", "How the fair value was set (the ACT requires it).", "in_kind_valuation_method"),
        Column("donor_id", "code", "The donor's id.", "donor_id"),
        Column("donor_name", "text", "First and last name, else the organisation name, else the email.", DONOR_NAME),
        *DONOR_ADDRESS,
        Column("campaign_id", "code", "The campaign's id, if any.", "campaign_id"),
        Column("campaign_name", "text", "The campaign's name.", "campaign__name"),
        Column("revenue_code", "text", "The revenue code as entered.", "revenue_code"),
        Column("jurisdiction", "code", "The jurisdiction the revenue code maps to.", "jurisdiction"),
        Column("reference", "text", "Reference.", "reference"),
        Column("created_at", "timestamp", "When the record was created.", "created_at"),
    )

    def base(self, spec):
        return super().base(spec).filter(donation_type=DonationType.IN_KIND)


# --- campaign summary -------------------------------------------------------------------------

# The campaign summary's line key: its first columns (campaign, month, currency, source code and link).
CAMPAIGN_SUMMARY_KEYS = 10

@register
class CampaignSummaryExporter(QuerySetExporter):
    name = "campaign-summary"
    title = "Campaign summary"
    description = (
        "Per campaign, calendar month of the gift date, source code and link (`source_code`, `utm_source`, `utm_medium`, "
        "`utm_campaign`, each empty for gifts without one; sum the lines by either to see a campaign's sources): "
        "gifts, distinct donors and money raised, counting CONFIRMED "
        "gifts only, each for what was kept after any partial refund (monetary and in-kind at fair value, as the "
        "campaign totals of the API). Gifts without a campaign "
        "are one line per month named `(no campaign)` unless a campaign filter is given. Filters: those of "
        "GET /api/v1/campaigns (they choose the campaigns)."
    )
    filterset_class = CampaignFilterSet
    columns = (
        Column("campaign_id", "code", "The campaign's id; empty for gifts without a campaign.", "campaign_id"),
        Column("campaign_name", "text", "The campaign's name.", SqlTemplate("COALESCE({0}, '(no campaign)')", F("campaign__name"))),
        Column("campaign_status", "code", "ACTIVE or ARCHIVED.", "campaign__status"),
        Column("month", "month", "The month of the gifts.", SqlTemplate("to_char({0}, 'YYYY-MM')", F("donation_date"))),
        Column("month_start", "date", "The first day of that month.",
               SqlTemplate("date_trunc('month', {0})::date", F("donation_date"), output_field=DateField())),
        Column("currency", "code", "ISO 4217.", "currency"),
        Column("source_code", "text", "The gifts' source code (empty: none); a campaign's month has one line per source code "
               "and link.", SqlTemplate("COALESCE({0}, '')", F("source_code"))),
        Column("utm_source", "text", "The utm_source of the link the gifts' donors followed (empty: none).",
               SqlTemplate("COALESCE({0}, '')", F("utm_source"))),
        Column("utm_medium", "text", "Its utm_medium (empty: none).", SqlTemplate("COALESCE({0}, '')", F("utm_medium"))),
        Column("utm_campaign", "text", "Its utm_campaign (empty: none).", SqlTemplate("COALESCE({0}, '')", F("utm_campaign"))),
        Column("gifts_count", "integer", "Confirmed gifts.", Count("id")),
        Column("donors_count", "integer", "Distinct donors of those gifts.", Count("donor_id", distinct=True)),
        Column("raised_cents", "cents", "Money raised and kept (monetary plus in-kind fair value).", rules.counted_sum()),
        Column("raised_dollars", "dollars", "The same in dollars.", rules.counted_sum()),
        Column("monetary_cents", "cents", "Of which monetary.",
               Coalesce(rules.counted_sum(Q(donation_type=DonationType.MONETARY)), 0)),
        Column("monetary_dollars", "dollars", "In dollars.",
               Coalesce(rules.counted_sum(Q(donation_type=DonationType.MONETARY)), 0)),
        Column("in_kind_cents", "cents", "Of which in-kind (fair value).",
               Coalesce(rules.counted_sum(Q(donation_type=DonationType.IN_KIND)), 0)),
        Column("in_kind_dollars", "dollars", "In dollars.",
               Coalesce(rules.counted_sum(Q(donation_type=DonationType.IN_KIND)), 0)),
    )

    def filter_base(self, spec):
        return Campaign.objects.for_organisation(spec.organisation)

    def query(self, spec):
        donations = Donation.objects.for_organisation(spec.organisation).filter(
            rules.COUNTED, donation_date__gte=spec.date_from, donation_date__lte=spec.date_to)
        campaigns = None
        if spec.filters:
            campaigns = self.filtered(spec, self.filter_base(spec))
        if spec.restrict and "campaign" in spec.restrict:
            campaigns = (campaigns if campaigns is not None else self.filter_base(spec)).filter(pk__in=spec.restrict["campaign"])
        if campaigns is not None:
            donations = donations.filter(campaign_id__in=campaigns.values("pk"))
        keys = {f"c{i}": _expression(c) for i, c in enumerate(self.columns[:CAMPAIGN_SUMMARY_KEYS])}
        aggregates = {f"c{i}": _expression(c) for i, c in enumerate(self.columns) if i >= CAMPAIGN_SUMMARY_KEYS}
        queryset = donations.values(**keys).annotate(**aggregates).order_by("c1", "c0", "c3", "c6", "c7", "c8", "c9")
        sql, params = _compiled(queryset)
        return _renamed(self.columns, sql), params


# --- reconciliation ---------------------------------------------------------------------------

RECEIVED = (Status.CONFIRMED, Status.REFUNDED)
RECONCILIATION_VIEWS = ("summary", "payouts")


@dataclass
class ReconciliationSpec(ReportSpec):
    """A reconciliation request: `view` is `summary` (one line per day and method,
    per deposit batch, per Stripe payout) or `payouts` (each Stripe payout, then
    its gifts one per line)."""

    view: str = "summary"

    @property
    def params(self) -> dict[str, str]:
        out = super().params
        if self.view != "summary":
            out["view"] = self.view
        return out

    def file_name(self, fmt: str) -> str:
        name = super().file_name(fmt)
        if self.view == "summary":
            return name
        marker = f"_{self.exporter.name}_"
        return name.replace(marker, f"{marker}{self.view}_", 1)


@register
class ReconciliationExporter(Exporter):
    name = "reconciliation"
    title = "Reconciliation"
    description = (
        "Money received, to match bank deposits and Stripe payouts: monetary gifts that were received "
        "(CONFIRMED, and REFUNDED ones, since their money was deposited before it went back; `status` narrows this). "
        "Gifts entered through a posted deposit batch are one `BATCH` line per batch, dated on the deposit date, with "
        "the batch's control count and total beside the sum of its gifts. Card gifts that Stripe has paid out are one "
        "`PAYOUT` line per payout, dated on the payout's arrival date, with the gifts' gross, Stripe's fees and the net "
        "beside the amount paid into the bank (`unmatched_cents` is what the gifts do not explain: 0 when the payout is "
        "exactly these gifts). Every other gift is summed per gift date, payment method and currency in a `DAY_METHOD` "
        "line. A method left blank shows as UNSPECIFIED. So every received gift is on exactly one line. "
        "`view=payouts` gives the per-payout view instead, to match a Stripe payout to its gifts: for each payout "
        "arriving in the range, its `PAYOUT` line (the same totals), then one `PAYOUT_GIFT` line per gift in it "
        "(gross, fee, net); the `PAYOUT_GIFT` lines of a payout add up to its `PAYOUT` line. "
        "Filters: those of GET /api/v1/donations, and `view` (`summary`, the default, or `payouts`)."
    )
    filterset_class = DonationFilterSet
    extra_params = ("view",)
    columns = (
        Column("date", "date", "The gift date (DAY_METHOD), the deposit date (BATCH) or the payout's arrival date (PAYOUT, PAYOUT_GIFT)."),
        Column("payment_method", "code", "CASH, CHEQUE, BANK_TRANSFER, CARD, OTHER or UNSPECIFIED (PAYOUT lines: CARD)."),
        Column("line_type", "code", "DAY_METHOD (gifts of that day and method outside batches and payouts), BATCH (one deposit "
                                    "batch), PAYOUT (one Stripe payout) or, with view=payouts, PAYOUT_GIFT (one gift of a payout)."),
        Column("batch_id", "code", "BATCH lines: the deposit batch's id."),
        Column("batch_reference", "text", "BATCH lines: the deposit slip or bank reference."),
        Column("currency", "code", "ISO 4217."),
        Column("gifts_count", "integer", "Gifts on the line."),
        Column("total_cents", "cents", "Their sum (gross: before Stripe's fees)."),
        Column("total_dollars", "dollars", "Their sum in dollars."),
        Column("control_count", "integer", "BATCH lines: the control count entered with the batch."),
        Column("control_total_cents", "cents", "BATCH lines: the control total entered with the batch."),
        Column("control_total_dollars", "dollars", "BATCH lines: the control total in dollars."),
        Column("payout_id", "code", "PAYOUT and PAYOUT_GIFT lines: the Stripe payout's id (po_…)."),
        Column("payout_amount_cents", "cents", "PAYOUT lines: the amount Stripe paid into the bank account."),
        Column("payout_amount_dollars", "dollars", "PAYOUT lines: the payout amount in dollars."),
        Column("fee_cents", "cents", "Stripe's fees on the line's card gifts (blank when no gift on the line has a fee)."),
        Column("fee_dollars", "dollars", "The fees in dollars."),
        Column("net_cents", "cents", "The line's card gifts after Stripe's fees (blank when no gift on the line has a fee)."),
        Column("net_dollars", "dollars", "The net in dollars."),
        Column("unmatched_cents", "cents", "PAYOUT lines: the payout amount minus the net of its gifts on the line; 0 when "
                                           "they match (otherwise refunds, disputes or adjustments in the payout, or gifts "
                                           "left out by a filter)."),
        Column("unmatched_dollars", "dollars", "PAYOUT lines: the unmatched amount in dollars."),
        Column("donation_id", "code", "PAYOUT_GIFT lines: the gift's id."),
        Column("donation_date", "date", "PAYOUT_GIFT lines: the gift's date."),
    )

    def resolve(self, *, organisation, data, restrict=None):
        view = str(data.get("view") or "summary").strip().lower()
        if view not in RECONCILIATION_VIEWS:
            raise ValidationFailed(f"view: one of {', '.join(RECONCILIATION_VIEWS)}.", param="view")
        from dataclasses import fields as dataclass_fields

        spec = super().resolve(organisation=organisation, data=data, restrict=restrict)
        return ReconciliationSpec(**{f.name: getattr(spec, f.name) for f in dataclass_fields(ReportSpec)}, view=view)

    def filter_base(self, spec):
        return Donation.objects.for_organisation(spec.organisation)

    def _gifts(self, spec: ReportSpec) -> QuerySet:
        queryset = Donation.objects.for_organisation(spec.organisation).filter(donation_type=DonationType.MONETARY)
        if "status" not in spec.filters:
            queryset = queryset.filter(status__in=RECEIVED)
        if spec.restrict and "donation" in spec.restrict:
            queryset = queryset.filter(pk__in=spec.restrict["donation"])
        return self.filtered(spec, queryset)

    def query(self, spec):
        if getattr(spec, "view", "summary") == "payouts":
            return self._payouts_query(spec)
        return self._summary_query(spec)

    @staticmethod
    def _fees() -> dict:
        """Columns 15-18 of the DAY_METHOD and BATCH lines: the fees and net of their card gifts, if any (a gift's
        net: what Stripe reported, else gross - fee; NULL for a gift without a fee)."""
        from django.db.models import BigIntegerField

        net = SqlTemplate("COALESCE({0}, {1} - {2})", F("net_cents"), F("amount_cents"), F("fee_cents"),
                          output_field=BigIntegerField())
        return {"c15": Sum("fee_cents"), "c16": Dollars(Sum("fee_cents")), "c17": Sum(net), "c18": Dollars(Sum(net))}

    def _summary_query(self, spec):
        gifts = self._gifts(spec)
        loose = (
            gifts.filter(batch_row__isnull=True, stripe_payout_id__isnull=True,
                         donation_date__gte=spec.date_from, donation_date__lte=spec.date_to)
            .values(
                c0=F("donation_date"),
                c1=SqlTemplate("COALESCE({0}, 'UNSPECIFIED')", F("payment_method")),
                c2=SqlTemplate("'DAY_METHOD'::text", F("currency")),  # constant (the argument keeps it out of GROUP BY issues)
                c3=SqlTemplate("NULL::text", F("currency")),
                c4=SqlTemplate("NULL::text", F("currency")),
                c5=F("currency"),
            )
            .annotate(c6=Count("id"), c7=Sum("amount_cents"), c8=Dollars(Sum("amount_cents")),
                      c9=SqlTemplate("NULL::integer", F("currency")), c10=SqlTemplate("NULL::bigint", F("currency")),
                      c11=SqlTemplate("NULL::numeric", F("currency")), **self._fees())
        )
        batched = (
            gifts.filter(batch_row__batch__deposit_date__gte=spec.date_from, batch_row__batch__deposit_date__lte=spec.date_to)
            .values(
                c0=F("batch_row__batch__deposit_date"),
                c1=F("batch_row__batch__payment_method"),
                c2=SqlTemplate("'BATCH'::text", F("currency")),
                c3=F("batch_row__batch_id"),
                c4=Neutralised(F("batch_row__batch__reference")),
                c5=F("currency"),
                c9=F("batch_row__batch__control_count"),
                c10=F("batch_row__batch__control_total_cents"),
                c11=Dollars(F("batch_row__batch__control_total_cents")),
            )
            .annotate(c6=Count("id"), c7=Sum("amount_cents"), c8=Dollars(Sum("amount_cents")), **self._fees())
        )
        loose_sql, loose_params = _compiled(loose)
        batched_sql, batched_params = _compiled(batched)
        payouts_sql, payouts_params = self._payout_lines_sql(spec, gifts, paid_out_gifts_only=True)
        # Same column names, in the published order, on every side of the UNION.
        no_payout = ('NULL::text AS "c12", NULL::bigint AS "c13", NULL::numeric AS "c14", "c15", "c16", "c17", "c18", '
                     'NULL::bigint AS "c19", NULL::numeric AS "c20", NULL::text AS "c21", NULL::date AS "c22"')
        head = ", ".join(f'"c{i}"' for i in range(12))
        inner = (f"SELECT {head}, {no_payout} FROM ({loose_sql}) AS loose "
                 f"UNION ALL SELECT {head}, {no_payout} FROM ({batched_sql}) AS batched "
                 f"UNION ALL SELECT {', '.join(f'{chr(34)}c{i}{chr(34)}' for i in range(23))} FROM ({payouts_sql}) AS payouts")
        return _renamed(self.columns, inner, ' ORDER BY report."c0", report."c1", report."c2" DESC, report."c4", report."c3", '
                                             'report."c12"'), \
            loose_params + batched_params + payouts_params

    def _payout_lines_sql(self, spec, gifts: QuerySet, *, paid_out_gifts_only: bool) -> tuple[str, list]:
        """One PAYOUT line per Stripe payout of the organisation arriving in the range.
        paid_out_gifts_only (summary): payouts with at least one of `gifts`, plus gifts
        naming a payout not (yet) on file, dated on their first gift. Otherwise
        (view=payouts): every payout on file, with or without gifts."""
        from payments.models import Payout

        donation_table = Donation._meta.db_table
        payout_table = Payout._meta.db_table
        ids_sql, ids_params = _compiled(gifts.filter(stripe_payout_id__isnull=False).values("id"))
        d = dollars_sql
        arrival = "COALESCE(p.arrival_date, p.created_at::date)"  # the arrival date Stripe gave (always, in practice)
        net = "COALESCE(g.net_cents, g.amount_cents - g.fee_cents)"
        paid = f"""
            SELECT g.stripe_payout_id AS payout_id, g.currency, g.id, g.amount_cents, g.fee_cents, {net} AS net,
                   g.donation_date
            FROM {donation_table} g
            WHERE g.organisation_id = %s AND g.id IN ({ids_sql})"""
        if paid_out_gifts_only:
            sql = f"""
                SELECT COALESCE(p.arrival_date, p.created_at::date, min(g.donation_date)) AS "c0", 'CARD'::text AS "c1", 'PAYOUT'::text AS "c2",
                       NULL::text AS "c3", NULL::text AS "c4", g.currency AS "c5", count(g.id) AS "c6",
                       sum(g.amount_cents) AS "c7", {d('sum(g.amount_cents)')} AS "c8",
                       NULL::integer AS "c9", NULL::bigint AS "c10", NULL::numeric AS "c11",
                       g.payout_id AS "c12", p.amount_cents AS "c13", {d('p.amount_cents')} AS "c14",
                       sum(g.fee_cents) AS "c15", {d('sum(g.fee_cents)')} AS "c16", sum(g.net) AS "c17", {d('sum(g.net)')} AS "c18",
                       p.amount_cents - COALESCE(sum(g.net), 0) AS "c19", {d('p.amount_cents - COALESCE(sum(g.net), 0)')} AS "c20",
                       NULL::text AS "c21", NULL::date AS "c22"
                FROM ({paid}) AS g
                LEFT JOIN {payout_table} p ON p.organisation_id = %s AND p.payout_id = g.payout_id
                GROUP BY g.payout_id, g.currency, p.arrival_date, p.created_at, p.amount_cents
                HAVING COALESCE(p.arrival_date, p.created_at::date, min(g.donation_date)) BETWEEN %s AND %s"""
            return sql, [spec.organisation.id, *ids_params, spec.organisation.id, spec.date_from, spec.date_to]
        sql = f"""
            SELECT {arrival} AS "c0", 'CARD'::text AS "c1", 'PAYOUT'::text AS "c2",
                   NULL::text AS "c3", NULL::text AS "c4", p.currency AS "c5", count(g.id) AS "c6",
                   COALESCE(sum(g.amount_cents), 0) AS "c7", {d('COALESCE(sum(g.amount_cents), 0)')} AS "c8",
                   NULL::integer AS "c9", NULL::bigint AS "c10", NULL::numeric AS "c11",
                   p.payout_id AS "c12", p.amount_cents AS "c13", {d('p.amount_cents')} AS "c14",
                   sum(g.fee_cents) AS "c15", {d('sum(g.fee_cents)')} AS "c16", sum(g.net) AS "c17", {d('sum(g.net)')} AS "c18",
                   p.amount_cents - COALESCE(sum(g.net), 0) AS "c19", {d('p.amount_cents - COALESCE(sum(g.net), 0)')} AS "c20",
                   NULL::text AS "c21", NULL::date AS "c22", 0 AS "_section"
            FROM {payout_table} p
            LEFT JOIN ({paid}) AS g ON g.payout_id = p.payout_id
            WHERE p.organisation_id = %s AND {arrival} BETWEEN %s AND %s
            GROUP BY p.id, p.arrival_date, p.created_at, p.currency, p.payout_id, p.amount_cents
            UNION ALL
            SELECT {arrival}, COALESCE(d.payment_method, 'UNSPECIFIED'), 'PAYOUT_GIFT'::text,
                   NULL::text, NULL::text, d.currency, 1,
                   d.amount_cents, {d('d.amount_cents')},
                   NULL::integer, NULL::bigint, NULL::numeric,
                   p.payout_id, NULL::bigint, NULL::numeric,
                   d.fee_cents, {d('d.fee_cents')}, {net.replace('g.', 'd.')}, {d(net.replace('g.', 'd.'))},
                   NULL::bigint, NULL::numeric,
                   d.id, d.donation_date, 1
            FROM {payout_table} p
            JOIN {donation_table} d ON d.organisation_id = p.organisation_id AND d.stripe_payout_id = p.payout_id
            WHERE p.organisation_id = %s AND {arrival} BETWEEN %s AND %s AND d.id IN ({ids_sql})"""
        params = [spec.organisation.id, *ids_params, spec.organisation.id, spec.date_from, spec.date_to,
                  spec.organisation.id, spec.date_from, spec.date_to, *ids_params]
        return sql, params

    def _payouts_query(self, spec):
        sql, params = self._payout_lines_sql(spec, self._gifts(spec), paid_out_gifts_only=False)
        return _renamed(self.columns, sql, ' ORDER BY report."c0", report."c12", report."_section", report."c22", report."c21"'), params


# --- disclosure return ------------------------------------------------------------------------

REPORTABLE_JURISDICTIONS = [j for j in Jurisdiction.values if j != Jurisdiction.UNREGULATED]


def _period_reference_day(period: str) -> tuple[dt.date, str | None]:
    """`2025-26` -> (1 Jul 2025, FINANCIAL_YEAR); `2027` -> (1 Jan 2027, CALENDAR_YEAR); a date -> (date, None)."""
    text = period.strip()
    if m := re.fullmatch(r"([0-9]{4})-([0-9]{2})", text):
        start, end = int(m.group(1)), int(m.group(2))
        if (start + 1) % 100 != end:
            raise ValidationFailed("period: a financial year is written like 2025-26.", param="period")
        if start < 1:
            raise ValidationFailed("period: the year is out of range.", param="period")
        _check_in_range(dt.date(start, 1, 1), "period")  # a year gifts may carry, before any period arithmetic
        return rules.financial_year_starting(start)[0], PeriodKind.FINANCIAL_YEAR
    if re.fullmatch(r"[0-9]{4}", text):
        if int(text) < 1:
            raise ValidationFailed("period: the year is out of range.", param="period")
        return _check_in_range(dt.date(int(text), 1, 1), "period"), PeriodKind.CALENDAR_YEAR
    day = _parse_date(text, "period")
    return day, None


# The SQL type of each kind of column, for a row section that leaves a column empty.
SQL_TYPES = {"text": "text", "code": "text", "integer": "bigint", "cents": "bigint", "dollars": "numeric", "date": "date",
             "timestamp": "text", "month": "text"}


def _select_list(columns: tuple[Column, ...], values: dict[str, str], sort_keys: dict[str, str]) -> str:
    """One SELECT list of every column, in the published order, from the raw SQL of the
    columns a kind of row fills (`values`), then the hidden sort keys. Each value is
    wrapped as its kind says, as the query-set exporters' are (text neutralised,
    timestamps ISO 8601); a dollars column left out is its `…_cents` twin in dollars;
    any other column left out is a NULL of the column's type, so that the row kinds
    of one report UNION column for column."""
    unknown = set(values) - {c.name for c in columns}
    if unknown:
        raise ValueError(f"Not columns of the report: {sorted(unknown)}")
    select = []
    for column in columns:
        sql = values.get(column.name)
        if sql is not None and column.kind == "text":
            sql = neutralise_sql(sql)
        elif sql is not None and column.kind == "timestamp":
            sql = iso_timestamp_sql(sql)
        elif sql is None and column.kind == "dollars":
            cents = values.get(column.name.removesuffix("_dollars") + "_cents")
            sql = dollars_sql(cents) if cents is not None else None
        select.append(f'{sql or f"NULL::{SQL_TYPES[column.kind]}"} AS "{column.name}"')
    select += [f'{sql} AS "{name}"' for name, sql in sort_keys.items()]
    return ", ".join(select)


def _named_sql(queryset: QuerySet, prefix: str) -> tuple[str, dict]:
    """A query set's SQL with its parameters named `<prefix>0`, `<prefix>1` …, to sit
    in a query written with named parameters (`%%` stays a literal percent sign)."""
    sql, params = _compiled(queryset)
    numbers = iter(range(len(params)))

    def name(match: re.Match) -> str:
        return "%%" if match.group() == "%%" else f"%({prefix}{next(numbers)})s"

    return re.sub(r"%%|%s", name, sql), {f"{prefix}{i}": value for i, value in enumerate(params)}


@register
class DisclosureReturnExporter(Exporter):
    name = "disclosure-return"
    title = "Disclosure return"
    description = (
        "For one jurisdiction and one disclosure period, in the shape of the regulator's return: every donor with a "
        "disclosure obligation recorded for the period (OPEN or LODGED; one is recorded when the donor's CONFIRMED "
        "gifts in the period pass the threshold of the regime rule in force, MORE_THAN or AT_OR_ABOVE as the rule says, "
        "and cancelled when they no longer do), with address and aggregate, then one `GIFT` row per CONFIRMED gift of "
        "that donor in the period (date, amount kept after any partial refund, MONETARY or IN_KIND) carrying the "
        "obligation's status. After the gifts, one `BREACH` row per recorded cap breach whose "
        "period overlaps the return's (breaches are listed separately from the gifts). "
        "`jurisdiction` defaults to the organisation's default jurisdiction. `period` is a financial year (`2025-26`), "
        "a calendar year (`2027`, for calendar-year regimes) or any date inside the period; without it, the period "
        "containing `from` (or today). `from` and `to`, when given, must lie inside that one period. The file's "
        "period is the rule's period (a truncated year, such as the federal FY 2026-27, ends where the rule ends)."
    )
    extra_params = ("jurisdiction", "period")
    columns = (
        Column("record_type", "code", "GIFT (a gift of a donor with a disclosure obligation) or BREACH (a cap breach)."),
        Column("jurisdiction", "code", "The jurisdiction of the return."),
        Column("period_start", "date", "First day of the disclosure period."),
        Column("period_end", "date", "Last day of the disclosure period."),
        Column("regime", "text", "The regime rule applied (its name)."),
        Column("threshold_cents", "cents", "The disclosure threshold."),
        Column("threshold_dollars", "dollars", "The threshold in dollars."),
        Column("donor_id", "code", "The donor's id."),
        Column("donor_type", "code", "INDIVIDUAL, ORGANISATION, TRUST or UNKNOWN."),
        Column("donor_name", "text", "First and last name, else the organisation name, else the email."),
        Column("donor_address_line1", "text", "Address line 1."),
        Column("donor_address_line2", "text", "Address line 2."),
        Column("donor_suburb", "text", "Suburb."),
        Column("donor_state", "text", "State."),
        Column("donor_postcode", "text", "Postcode."),
        Column("donor_country", "code", "ISO 3166-1 alpha-2."),
        Column("aggregate_cents", "cents", "GIFT rows: the donor's total of CONFIRMED gifts in the period (what was kept)."),
        Column("aggregate_dollars", "dollars", "The aggregate in dollars."),
        Column("aggregate_monetary_cents", "cents", "Of which monetary."),
        Column("aggregate_monetary_dollars", "dollars", "In dollars."),
        Column("aggregate_in_kind_cents", "cents", "Of which in-kind (fair value)."),
        Column("aggregate_in_kind_dollars", "dollars", "In dollars."),
        Column("gift_id", "code", "GIFT rows: the donation's id."),
        Column("gift_date", "date", "GIFT rows: the date of the gift."),
        Column("gift_amount_cents", "cents", "GIFT rows: the amount kept after any partial refund (fair value for in-kind)."),
        Column("gift_amount_dollars", "dollars", "In dollars."),
        Column("gift_type", "code", "GIFT rows: MONETARY or IN_KIND."),
        Column("gift_in_kind_category", "code", "GIFT rows, in-kind: the category."),
        Column("gift_in_kind_description", "text", "GIFT rows, in-kind: what was given."),
        Column("obligation_id", "code", "GIFT rows: the donor's disclosure obligation for the period (the latest, if several)."),
        Column("obligation_status", "code", "GIFT rows: OPEN or LODGED."),
        Column("obligation_due_date", "date", "When the disclosure is due."),
        Column("obligation_lodged_reference", "text", "The regulator's reference once lodged."),
        Column("obligation_lodged_date", "date", "When it was lodged."),
        Column("breach_id", "code", "BREACH rows: the breach's id."),
        Column("breach_period_start", "date", "BREACH rows: first day of the cap's period."),
        Column("breach_period_end", "date", "BREACH rows: last day of the cap's period."),
        Column("breach_cap_cents", "cents", "BREACH rows: the cap."),
        Column("breach_cap_dollars", "dollars", "In dollars."),
        Column("breach_aggregate_cents", "cents", "BREACH rows: the donor's total when the breach was recorded."),
        Column("breach_aggregate_dollars", "dollars", "In dollars."),
        Column("breach_excess_cents", "cents", "BREACH rows: how far over the cap."),
        Column("breach_excess_dollars", "dollars", "In dollars."),
        Column("breach_reason", "text", "BREACH rows: why it was recorded."),
        Column("breach_recorded_at", "timestamp", "BREACH rows: when it was recorded."),
    )

    def resolve(self, *, organisation, data, restrict=None):
        allowed = self.allowed_params()
        for name in data:
            if name not in allowed:
                raise InvalidRequest(f"Unknown parameter '{name}' for the {self.name} report.", param=name)
        jurisdiction = (data.get("jurisdiction") or "").strip().upper()
        if not jurisdiction:
            from compliance.services import compliance_settings_get

            jurisdiction = compliance_settings_get(organisation=organisation).default_jurisdiction
        if jurisdiction not in REPORTABLE_JURISDICTIONS:
            raise ValidationFailed(f"jurisdiction: one of {', '.join(REPORTABLE_JURISDICTIONS)}.", param="jurisdiction")
        date_from = _parse_date(data.get("from"), "from")
        date_to = _parse_date(data.get("to"), "to")
        kind = None
        if data.get("period"):
            day, kind = _period_reference_day(str(data["period"]))
            param = "period"
        else:
            day, param = date_from or date_to or timezone.localdate(), "from" if date_from else "period"
        rule = rules.threshold_rule_in_force(jurisdiction, day)
        if rule is None:
            raise ValidationFailed(
                f"No disclosure threshold applies in {jurisdiction} on {day.isoformat()}: there is no return to prepare.",
                param=param if data.get("period") or date_from else "jurisdiction",
            )
        if kind is not None and rule.period_kind != kind:
            raise ValidationFailed(
                f"period: {jurisdiction} discloses per {rule.period_kind.replace('_', ' ').lower()} on {day.isoformat()} "
                f"({rule.name}); write the period as "
                + ("2025-26 (a financial year)." if rule.period_kind == PeriodKind.FINANCIAL_YEAR else "a year (2027) or a date."),
                param="period",
            )
        start, end = rules.rule_period(rule, day)
        for value, name in ((date_from, "from"), (date_to, "to")):
            if value is not None and not (start <= value <= end):
                raise ValidationFailed(
                    f"{name}: the {jurisdiction} disclosure period is {start.isoformat()} to {end.isoformat()}; "
                    f"{value.isoformat()} is outside it.", param=name)
        return ReportSpec(exporter=self, organisation=organisation, date_from=start, date_to=end,
                          jurisdiction=jurisdiction, rule=rule, restrict=restrict)

    def query(self, spec):
        organisation, rule = spec.organisation, spec.rule
        # The return's donors are those with a recorded (not cancelled) obligation for this jurisdiction and period.
        obligations = (
            DisclosureObligation.objects.for_organisation(organisation)
            .filter(jurisdiction=spec.jurisdiction, period_start=spec.date_from, period_end=spec.date_to)
            .exclude(status=ObligationStatus.CANCELLED)
        )
        gifts = Donation.objects.for_organisation(organisation).filter(
            rules.COUNTED, jurisdiction=spec.jurisdiction, donation_date__gte=spec.date_from, donation_date__lte=spec.date_to,
            donor_id__in=obligations.values("donor_id"),
        )
        breaches = ComplianceBreach.objects.for_organisation(organisation).filter(
            jurisdiction=spec.jurisdiction, period_start__lte=spec.date_to, period_end__gte=spec.date_from)
        if spec.restrict and "donor" in spec.restrict:
            # A selection from the admin (obligations' donors).
            gifts = gifts.filter(donor_id__in=spec.restrict["donor"])
            breaches = breaches.filter(donor_id__in=spec.restrict["donor"])
        obligations_sql, params = _named_sql(
            obligations.order_by("donor_id", "-created_at", "-id").distinct("donor_id")
            .values("donor_id", "id", "status", "due_date", "lodged_reference", "lodged_date"), "o")
        gifts_sql, gift_params = _named_sql(gifts.values(
            "id", "donor_id", "donation_date", "donation_type", "in_kind_category", "in_kind_description",
            counted=rules.COUNTED_CENTS), "g")
        breaches_sql, breach_params = _named_sql(breaches.values(
            "id", "donor_id", "period_start", "period_end", "cap_cents", "aggregate_cents", "excess_cents", "reason",
            "created_at"), "b")
        params |= gift_params | breach_params | {
            "org": organisation.id, "jurisdiction": spec.jurisdiction, "start": spec.date_from, "end": spec.date_to,
            "threshold": rule.threshold_cents, "regime": rule.name,
            "monetary": DonationType.MONETARY, "in_kind": DonationType.IN_KIND,
        }
        donor_name = "COALESCE(NULLIF(btrim(concat_ws(' ', dn.{0}, dn.{1})), ''), dn.organisation_name, dn.email)"
        every_row = {
            "jurisdiction": "%(jurisdiction)s::text", "period_start": "%(start)s::date", "period_end": "%(end)s::date",
            "regime": "%(regime)s::text", "threshold_cents": "%(threshold)s::bigint",
            "donor_id": "dn.id", "donor_type": "dn.donor_type", "donor_name": donor_name.format("first_name", "last_name"),
            **{f"donor_{c}": f"dn.{c}" for c in ("address_line1", "address_line2", "suburb", "state", "postcode", "country")},
        }
        donor_sort = neutralise_sql(donor_name.format("last_name", "first_name"))
        gift_rows = _select_list(self.columns, {
            **every_row, "record_type": "'GIFT'::text",
            "aggregate_cents": "t.total", "aggregate_monetary_cents": "t.monetary", "aggregate_in_kind_cents": "t.in_kind",
            "gift_id": "g.id", "gift_date": "g.donation_date", "gift_amount_cents": "g.counted", "gift_type": "g.donation_type",
            "gift_in_kind_category": "g.in_kind_category", "gift_in_kind_description": "g.in_kind_description",
            **{f"obligation_{c}": f"o.{c}" for c in ("id", "status", "due_date", "lodged_reference", "lodged_date")},
        }, sort_keys={"_section": "0", "_donor_sort": donor_sort, "_donor": "dn.id", "_date": "g.donation_date", "_id": "g.id"})
        breach_rows = _select_list(self.columns, {
            **every_row, "record_type": "'BREACH'::text",
            **{f"breach_{c}": f"b.{c}" for c in ("id", "period_start", "period_end", "cap_cents", "aggregate_cents",
                                                  "excess_cents", "reason")},
            "breach_recorded_at": "b.created_at",
        }, sort_keys={"_section": "1", "_donor_sort": donor_sort, "_donor": "dn.id", "_date": "b.period_start", "_id": "b.id"})
        published = ", ".join(f'"{name}"' for name in self.column_names)
        sql = f"""
            WITH obligations AS ({obligations_sql}),
            gifts AS MATERIALIZED ({gifts_sql}),
            totals AS (
                SELECT donor_id, SUM(counted) AS total,
                       COALESCE(SUM(counted) FILTER (WHERE donation_type = %(monetary)s), 0) AS monetary,
                       COALESCE(SUM(counted) FILTER (WHERE donation_type = %(in_kind)s), 0) AS in_kind
                FROM gifts GROUP BY donor_id
            ),
            breaches AS ({breaches_sql})
            SELECT {published} FROM (
                SELECT {gift_rows}
                FROM gifts g
                JOIN totals t ON t.donor_id = g.donor_id
                JOIN obligations o ON o.donor_id = g.donor_id
                JOIN donations_donor dn ON dn.id = g.donor_id AND dn.organisation_id = %(org)s
                UNION ALL
                SELECT {breach_rows}
                FROM breaches b
                JOIN donations_donor dn ON dn.id = b.donor_id AND dn.organisation_id = %(org)s
            ) AS report
            ORDER BY _section, _donor_sort, _donor, _date, _id"""
        return sql, params

    def validate_filters(self, spec):
        return None



# --- receipts register (issue 18) ----------------------------------------------------------------

@register
class ReceiptsRegisterExporter(QuerySetExporter):
    name = "receipts-register"
    title = "Receipts register"
    description = (
        "Every receipt and in-kind acknowledgement issued in the range (by the date it was issued, Australia/Sydney), "
        "one row each in number order, withdrawn ones included with why and what replaced them: the sequence has no "
        "gaps, so consecutive numbers show that none is missing. The donor's name is the one the receipt states."
    )
    columns = (
        Column("receipt_number", "integer", "The organisation's receipt number (consecutive, never reused).", "number"),
        Column("issued_at", "timestamp", "When it was issued.", "issued_at"),
        Column("status", "code", "ISSUED or WITHDRAWN.", "status"),
        Column("kind", "code", "RECEIPT (money) or ACKNOWLEDGEMENT (in kind: fair value, not deductible).", "kind"),
        Column("donation_id", "code", "The gift's id.", "donation_id"),
        Column("donation_date", "date", "The date of the gift.", "donation_date"),
        Column("donor_id", "code", "The donor's id.", "donor_id"),
        Column("donor_name", "text", "The donor's name as the receipt states it.", SqlTemplate("({0} ->> 'name')", F("donor_snapshot"))),
        Column("amount_cents", "cents", "The amount receipted (the gift less refunds; in kind: fair value).", "amount_cents"),
        Column("amount_dollars", "dollars", "The amount in dollars.", "amount_cents"),
        Column("currency", "code", "ISO 4217.", "currency"),
        Column("deductibility", "code", "NONE, DGR or POLITICAL: what the receipt says about tax.", "deductibility"),
        Column("withdrawn_at", "timestamp", "When it was withdrawn.", "withdrawn_at"),
        Column("withdraw_reason", "text", "Why (a void, a full refund, a correction, or staff's reason).", "withdraw_reason"),
        Column("replaced_by_number", "integer", "A corrected receipt: the number issued in its place.", "replaced_by__number"),
    )

    def rows(self, spec):
        from receipts.models import Receipt

        tz = zoneinfo.ZoneInfo("Australia/Sydney")
        start = dt.datetime.combine(spec.date_from, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(spec.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        queryset = Receipt.objects.for_organisation(spec.organisation).filter(issued_at__gte=start, issued_at__lt=end)
        if spec.restrict and "donor" in spec.restrict:
            queryset = queryset.filter(donor_id__in=spec.restrict["donor"])
        return queryset

    def order_terms(self, aliases):
        return [aliases["receipt_number"]]


# --- donors -----------------------------------------------------------------------------------

@register
class DonorsExporter(QuerySetExporter):
    """The donors list as a file (the dashboard's Donors → Download CSV): its filters, the donations
    report's donor columns, and what each donor gave in the range."""

    name = "donors"
    title = "Donors"
    filterset_class = DonorFilterSet
    description = (
        "Every donor (every one unless the filters of GET /api/v1/donors narrow them), one row each in name order, "
        "with the same donor columns as the donations report, their confirmed total and gifts (all time, as the "
        "API's donor shows them), the date of their last counted gift, and what they gave in the range: "
        "`period_cents` and `period_gifts` count CONFIRMED gifts dated from `from` to `to`, each for what was kept "
        "after any partial refund. Then one column per donor custom field, `donor_cf_<key>` (filter: `cf_<key>`)."
    )
    columns = (
        *donor_columns(""),
        Column("external_id", "text", "The id in the system the donor came from.", "external_id"),
        Column("total_cents", "cents", "Confirmed gifts, all time, each for what was kept after any partial refund.",
               "donations_total_cents"),
        Column("total_dollars", "dollars", "The same total in dollars.", "donations_total_cents"),
        Column("gifts", "integer", "How many confirmed gifts, all time.", "donations_count"),
        Column("last_gift_date", "date", "The date of the latest confirmed gift (empty: none).", "last_donation_date"),
        Column("period_cents", "cents", "Confirmed gifts dated in the range.", "period_cents"),
        Column("period_dollars", "dollars", "The same in dollars.", "period_cents"),
        Column("period_gifts", "integer", "How many confirmed gifts dated in the range.", "period_gifts"),
        Column("created_at", "timestamp", "When the record was created.", "created_at"),
        Column("updated_at", "timestamp", "When the record last changed.", "updated_at"),
    )

    def filter_base(self, spec):
        return Donor.objects.for_organisation(spec.organisation)

    def rows(self, spec):
        from django.db.models import IntegerField, OuterRef, Subquery

        in_range = Donation.objects.filter(rules.COUNTED, donor_id=OuterRef("pk"), donation_date__gte=spec.date_from,
                                           donation_date__lte=spec.date_to).order_by().values("donor_id")
        queryset = Donor.objects.for_organisation(spec.organisation).annotate(
            period_cents=Coalesce(Subquery(in_range.annotate(s=rules.counted_sum()).values("s")), 0),
            period_gifts=Coalesce(Subquery(in_range.annotate(n=Count("id")).values("n"), output_field=IntegerField()), 0),
        )
        if spec.restrict and "donor" in spec.restrict:
            queryset = queryset.filter(pk__in=spec.restrict["donor"])
        return self.filtered(spec, queryset)

    def order_terms(self, aliases):
        return ["sort_name", "id"]

    def columns_for(self, spec):
        """Then one column per donor custom field (`donor_cf_<key>`), as in the donations report."""
        from donations.custom_fields import custom_field_definitions

        return (*self.columns, *(custom_field_column(d, f"donor_cf_{d['key']}", "custom_fields", "donor")
                                 for d in custom_field_definitions(organisation=spec.organisation, applies_to="DONOR")))


__all__ = ["REGISTRY", "Column", "Exporter", "ReportSpec", "exporter_get"]

"""What campaigners track on donors and gifts (issue 19): tags, where a gift
came from, and an individual's employer.

The tag services are state changes like those of donations/services.py
(keyword-only, `actor`, lock, re-read, decide, audit/event). The rules on
source fields and employers are checked here once and called by
donor_create/donor_update/donor_merge and donation_record/donation_update.
This module imports no other donations module but models and selectors:
donations.services imports it.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from donations.models import TAG_NAME_MAX, Donor, DonorTag, DonorType, Tag
from donations.selectors import donor_snapshot
from organisations.models import Organisation
from organisations.services import audit_record
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks.events import event_record

# --- source tracking ----------------------------------------------------------------

# Each source field and its longest value. source_code is a code (the revenue
# code's characters); the others are free text without control characters.
SOURCE_FIELDS: dict[str, int] = {
    "source_code": 100, "referrer": 200, "utm_source": 100, "utm_medium": 100, "utm_campaign": 100,
}
SOURCE_CODE_RE = re.compile(r"[A-Za-z0-9._\-:/+@]{1,100}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# The free-text source fields as sent, by source_value_clean's rule (trimmed, then no
# control character), for the API document and its serializer to state.
SOURCE_TEXT_PATTERN = r"\s*[^\x00-\x1f\x7f]*\s*"
# A public page's query-string parameter → the source field it sets.
QUERY_SOURCE_PARAMS: dict[str, str] = {
    "source": "source_code", "source_code": "source_code", "ref": "referrer", "referrer": "referrer",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
}


def source_value_clean(name: str, value: Any) -> str | None:
    """One source field as every entry path takes it: text, trimmed, blank as none, bounded."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be text.", param=name)
    value = value.strip()
    if not value:
        return None
    limit = SOURCE_FIELDS[name]
    if name == "source_code":
        if not SOURCE_CODE_RE.fullmatch(value):
            raise ValidationFailed(f"source_code may hold letters, digits and . _ - : / + @, at most {limit} characters.",
                                   param=name)
        return value
    if len(value) > limit:
        raise ValidationFailed(f"{name} is at most {limit} characters.", param=name)
    if _CONTROL_RE.search(value):
        raise ValidationFailed(f"{name} cannot hold control characters.", param=name)
    return value


def source_fields_clean(values: dict[str, Any]) -> dict[str, str | None]:
    """The source fields of `values` (only those present), cleaned; ValidationFailed names the field."""
    return {name: source_value_clean(name, values[name]) for name in SOURCE_FIELDS if name in values}


def source_fields_from_query(query) -> dict[str, str]:
    """The source fields a public page's query string carries (`?source=`, `?ref=`,
    `?utm_source=`, …). A donor's payment is never refused for a bad tracking value:
    one that fails the rules is dropped, too long a text is cut to its bound."""
    out: dict[str, str] = {}
    for param, name in QUERY_SOURCE_PARAMS.items():
        raw = query.get(param) if hasattr(query, "get") else None
        if not isinstance(raw, str) or name in out:
            continue
        raw = _CONTROL_RE.sub("", raw).strip()
        if name != "source_code":
            raw = raw[:SOURCE_FIELDS[name]].strip()
        try:
            value = source_value_clean(name, raw)
        except ValidationFailed:
            continue
        if value:
            out[name] = value
    return out


# --- employer ------------------------------------------------------------------------

def employer_clean(*, organisation: Organisation, donor_type: str, employer_id: Any, donor_id: str | None = None) -> str | None:
    """The employer an individual donor names: a donor of type ORGANISATION in this
    organisation, not the donor itself. Locks the employer row so it cannot change
    type or disappear before the caller commits."""
    if employer_id is None or (isinstance(employer_id, str) and not employer_id.strip()):
        return None
    if not isinstance(employer_id, str):
        raise ValidationFailed("employer_id must be a donor id.", param="employer_id")
    employer_id = employer_id.strip()
    if donor_type != DonorType.INDIVIDUAL:
        raise ValidationFailed("Only an INDIVIDUAL donor names an employer or organisation.", param="employer_id",
                               reason="employer_for_individuals")
    if employer_id == donor_id:
        raise ValidationFailed("A donor cannot be their own employer.", param="employer_id")
    employer = Donor.objects.for_organisation(organisation).select_for_update().filter(pk=employer_id).values("donor_type").first()
    if employer is None:
        raise ValidationFailed(f"No donor '{employer_id}' in this organisation.", param="employer_id",
                               reason="unknown_employer")
    if employer["donor_type"] != DonorType.ORGANISATION:
        raise ValidationFailed("The employer must be a donor of type ORGANISATION.", param="employer_id",
                               reason="employer_not_organisation")
    return employer_id


def employer_check_type_change(*, organisation: Organisation, donor: Donor, new_type: str) -> None:
    """An ORGANISATION donor that individuals name as their employer keeps its type:
    changing it would leave their links pointing at a person."""
    if donor.donor_type == DonorType.ORGANISATION and new_type != DonorType.ORGANISATION:
        named_by = Donor.objects.for_organisation(organisation).filter(employer_id=donor.id).count()
        if named_by:
            raise ValidationFailed(
                f"{named_by} donor(s) name this organisation as their employer; clear those links before changing its type.",
                param="donor_type", reason="employer_of_donors", employees_count=named_by)


def employees_release(*, organisation: Organisation, donor_id: str) -> int:
    """Before `donor_id` is deleted: the donors naming it as employer no longer do."""
    return (Donor.objects.for_organisation(organisation).filter(employer_id=donor_id)
            .update(employer=None, updated_at=timezone.now()))


# --- tags --------------------------------------------------------------------------

MAX_TAGS_PER_CALL = 50
MAX_BULK_DONORS = 10_000
_TAG_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\,]")


def tag_name_clean(name: Any, *, param: str = "name") -> str:
    """A tag name: trimmed, inner spaces collapsed, 1 to 50 characters, without
    control characters, slashes or commas (names travel in URLs and in lists)."""
    if not isinstance(name, str):
        raise ValidationFailed("A tag name must be text.", param=param)
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("A tag needs a name.", param=param)
    if len(name) > TAG_NAME_MAX:
        raise ValidationFailed(f"A tag name is at most {TAG_NAME_MAX} characters.", param=param)
    if _TAG_FORBIDDEN.search(name):
        raise ValidationFailed("A tag name cannot hold a slash, a backslash, a comma or control characters.", param=param)
    return name


def tag_by_name(*, organisation: Organisation, name: str) -> Tag | None:
    return Tag.objects.for_organisation(organisation).alias(name_lower=Lower("name")).filter(name_lower=name.lower()).first()


def _tag_conflict(organisation: Organisation, name: str, exclude_id: str | None = None) -> None:
    existing = tag_by_name(organisation=organisation, name=name)
    if existing is not None and existing.id != exclude_id:
        raise Conflict(f"A tag named '{existing.name}' already exists: {existing.id}.", param="name", existing_id=existing.id)


def tag_snapshot(tag: Tag) -> dict:
    return {"id": tag.id, "name": tag.name}


def _donor_tags_refresh(donor_ids: Iterable[str]) -> None:
    """Donor.tags := the names of the donor's tags, sorted ignoring case (one UPDATE)."""
    ids = sorted(set(donor_ids))
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {Donor._meta.db_table} d
                   SET tags = COALESCE((SELECT array_agg(t.name ORDER BY lower(t.name), t.name)
                                          FROM {DonorTag._meta.db_table} dt JOIN {Tag._meta.db_table} t ON t.id = dt.tag_id
                                         WHERE dt.donor_id = d.id), '{{}}'),
                       updated_at = %s
                 WHERE d.id = ANY(%s)""",
            [timezone.now(), ids],
        )


@transaction.atomic
def tag_create(*, organisation: Organisation, actor: Actor, name: str) -> Tag:
    name = tag_name_clean(name)
    _tag_conflict(organisation, name)
    tag = Tag.objects.create(organisation=organisation, name=name)
    audit_record(organisation=organisation, actor=actor, action="tag.created", object_type="tag", object_id=tag.id,
                 after=tag_snapshot(tag))
    return tag


def _tag_for_update(organisation: Organisation, tag_id: str) -> Tag:
    tag = Tag.objects.for_organisation(organisation).select_for_update().filter(pk=tag_id).first()
    if tag is None:
        raise NotFound("Tag not found.")
    return tag


@transaction.atomic
def tag_rename(*, organisation: Organisation, actor: Actor, tag_id: str, name: str) -> Tag:
    """Rename a tag: its donors carry the new name (their `tags` change with it)."""
    tag = _tag_for_update(organisation, tag_id)
    name = tag_name_clean(name)
    if name == tag.name:
        return tag
    _tag_conflict(organisation, name, exclude_id=tag.id)
    before = tag_snapshot(tag)
    tag.name = name
    tag.save(update_fields=["name", "updated_at"])
    _donor_tags_refresh(DonorTag.objects.filter(tag=tag).values_list("donor_id", flat=True))
    audit_record(organisation=organisation, actor=actor, action="tag.renamed", object_type="tag", object_id=tag.id,
                 before=before, after=tag_snapshot(tag))
    return tag


@transaction.atomic
def tag_delete(*, organisation: Organisation, actor: Actor, tag_id: str) -> None:
    """Delete a tag: every donor loses it."""
    tag = _tag_for_update(organisation, tag_id)
    donor_ids = list(DonorTag.objects.filter(tag=tag).values_list("donor_id", flat=True))
    before = tag_snapshot(tag) | {"donors_count": len(donor_ids)}
    tag.delete()
    _donor_tags_refresh(donor_ids)
    audit_record(organisation=organisation, actor=actor, action="tag.deleted", object_type="tag", object_id=tag_id, before=before)


def _tags_resolve(organisation: Organisation, actor: Actor, names: Any, *, create: bool, param: str = "tags") -> list[Tag]:
    """The organisation's tags named by `names` (ignoring case), in order, without
    repeats. An unknown name is created when `create`, else refused."""
    if not isinstance(names, (list, tuple)) or not names:
        raise ValidationFailed("Name at least one tag.", param=param)
    if len(names) > MAX_TAGS_PER_CALL:
        raise ValidationFailed(f"At most {MAX_TAGS_PER_CALL} tags at a time.", param=param)
    cleaned: dict[str, str] = {}
    for index, raw in enumerate(names):
        name = tag_name_clean(raw, param=f"{param}[{index}]")
        cleaned.setdefault(name.lower(), name)
    existing = {t.name.lower(): t for t in Tag.objects.for_organisation(organisation)
                .alias(name_lower=Lower("name")).filter(name_lower__in=list(cleaned))}
    tags = []
    for key, name in cleaned.items():
        tag = existing.get(key)
        if tag is None:
            if not create:
                raise ValidationFailed(f"No tag named '{name}' in this organisation.", param=param, reason="unknown_tag", tag=name)
            try:
                with transaction.atomic():
                    tag = tag_create(organisation=organisation, actor=actor, name=name)
            except Conflict:  # created meanwhile by another request: use it
                tag = tag_by_name(organisation=organisation, name=name)
        tags.append(tag)
    return tags


def _lock_donors(organisation: Organisation, donor_ids: list[str]) -> list[str]:
    return list(Donor.objects.for_organisation(organisation).select_for_update().filter(pk__in=donor_ids)
                .order_by("id").values_list("id", flat=True))


def _tag_event(organisation: Organisation, actor: Actor, donor_id: str, *, added: list[str] = (), removed: list[str] = ()) -> None:
    after = donor_snapshot(donor_id=donor_id)
    if added:
        event_record(organisation=organisation, actor=actor, type="donor.tagged", object_type="donor", object_id=donor_id,
                     after=after | {"tags_added": sorted(added, key=lambda n: (n.lower(), n))})
    if removed:
        event_record(organisation=organisation, actor=actor, type="donor.untagged", object_type="donor", object_id=donor_id,
                     after=after | {"tags_removed": sorted(removed, key=lambda n: (n.lower(), n))})


def _apply(organisation: Organisation, actor: Actor, donor_ids: list[str], tags: list[Tag], *, remove: bool) -> dict[str, list[str]]:
    """Add (or remove) `tags` on the locked donors; one event per donor that changed.
    Returns {donor_id: [names changed]}."""
    tag_ids = [t.id for t in tags]
    names = {t.id: t.name for t in tags}
    have = set(DonorTag.objects.filter(donor_id__in=donor_ids, tag_id__in=tag_ids).values_list("donor_id", "tag_id"))
    changed: dict[str, list[str]] = {}
    if remove:
        pairs = sorted(have)
        DonorTag.objects.filter(donor_id__in=donor_ids, tag_id__in=tag_ids).delete()
    else:
        pairs = [(d, t) for d in donor_ids for t in tag_ids if (d, t) not in have]
        DonorTag.objects.bulk_create([DonorTag(donor_id=d, tag_id=t) for d, t in pairs], ignore_conflicts=True)
    for donor_id, tag_id in pairs:
        changed.setdefault(donor_id, []).append(names[tag_id])
    _donor_tags_refresh(changed)
    for donor_id in sorted(changed):
        _tag_event(organisation, actor, donor_id, **({"removed": changed[donor_id]} if remove else {"added": changed[donor_id]}))
    return changed


@transaction.atomic
def donor_tags_add(*, organisation: Organisation, actor: Actor, donor_id: str, names: list[str], create: bool = True) -> Donor:
    """Put tags on a donor (a tag it already carries is left as it is). An unknown
    name creates the tag when `create` (the API's WRITE key, the dashboard's editors)."""
    if not _lock_donors(organisation, [donor_id]):
        raise NotFound("Donor not found.")
    tags = _tags_resolve(organisation, actor, names, create=create)
    _apply(organisation, actor, [donor_id], tags, remove=False)
    return Donor.objects.for_organisation(organisation).get(pk=donor_id)


@transaction.atomic
def donor_tags_remove(*, organisation: Organisation, actor: Actor, donor_id: str, names: list[str]) -> Donor:
    """Take tags off a donor. A tag the organisation does not have is 404 (the
    name is the resource); one the donor does not carry changes nothing."""
    if not _lock_donors(organisation, [donor_id]):
        raise NotFound("Donor not found.")
    try:
        tags = _tags_resolve(organisation, actor, names, create=False)
    except ValidationFailed as exc:
        if exc.extra.get("reason") == "unknown_tag":
            raise NotFound(exc.message) from None
        raise
    _apply(organisation, actor, [donor_id], tags, remove=True)
    return Donor.objects.for_organisation(organisation).get(pk=donor_id)


@transaction.atomic
def donors_tag_bulk(*, organisation: Organisation, actor: Actor, donors: QuerySet, names: list[str], remove: bool = False,
                    create: bool = True) -> int:
    """Add (or remove) tags on every donor of `donors` (a filtered list: the
    dashboard's bulk action), at most MAX_BULK_DONORS at a time. Returns how many
    donors changed."""
    donor_ids = list(donors.filter(organisation=organisation).order_by("id").values_list("id", flat=True)[:MAX_BULK_DONORS + 1])
    if len(donor_ids) > MAX_BULK_DONORS:
        raise ValidationFailed(f"A bulk action changes at most {MAX_BULK_DONORS:,} donors; narrow the filter.", param="donors",
                               reason="too_many_donors")
    tags = _tags_resolve(organisation, actor, names, create=create and not remove)
    locked = _lock_donors(organisation, donor_ids)
    return len(_apply(organisation, actor, locked, tags, remove=remove))


def donors_merge_tags(*, organisation: Organisation, survivor: Donor, duplicate: Donor, **_) -> None:
    """donor_merge's hook: the survivor carries the duplicate's tags too; the
    duplicate's employees name the survivor if it is an organisation (else no one);
    the survivor never names itself or the duplicate as its employer."""
    carried = list(DonorTag.objects.filter(donor=duplicate).values_list("tag_id", flat=True))
    if carried:
        DonorTag.objects.bulk_create([DonorTag(donor=survivor, tag_id=t) for t in carried], ignore_conflicts=True)
        _donor_tags_refresh([survivor.id])
        survivor.tags = Donor.objects.for_organisation(organisation).filter(pk=survivor.id).values_list("tags", flat=True).get()
    new_employer = survivor.id if survivor.donor_type == DonorType.ORGANISATION else None
    (Donor.objects.for_organisation(organisation).filter(employer_id=duplicate.id).exclude(pk=survivor.id)
     .update(employer_id=new_employer, updated_at=timezone.now()))
    if survivor.employer_id in (survivor.id, duplicate.id) or survivor.donor_type != DonorType.INDIVIDUAL:
        survivor.employer_id = None


def _organisation_of(queryset: QuerySet):
    """The organisation a scoped queryset (`.for_organisation(org)`) names, or None."""
    from django.db.models.lookups import Exact

    def walk(node):
        for child in getattr(node, "children", ()):
            target = getattr(getattr(child, "lhs", None), "target", None)
            if isinstance(child, Exact) and getattr(target, "name", None) == "organisation" and target.model is queryset.model:
                return getattr(child.rhs, "pk", child.rhs)
            found = walk(child)
            if found is not None:
                return found
        return None

    return walk(queryset.query.where)


def _scoped_tag(queryset: QuerySet, name: str) -> dict | None:
    """The tag `name` (ignoring case, trimmed) of the organisation `queryset` is scoped
    to, as {"id", "name"}: looked up first (one small query) so that PostgreSQL plans
    the list with the tag's own statistics. {} when `queryset` is not scoped; None
    when the organisation has no such tag."""
    organisation_id = _organisation_of(queryset)
    if organisation_id is None:
        return {}
    return (Tag.objects.for_organisation(organisation_id).alias(name_lower=Lower("name"))
            .filter(name_lower=name.strip().lower()).values("id", "name").first())


def _tagged_donor_ids(queryset: QuerySet, name: str, tag: dict | None) -> QuerySet:
    """The ids of donors carrying the tag `name` (ignoring case), from the links
    (DonorTag). A list filtered on a tag then walks its usual order and probes the
    links (profiled on the bench: 48 ms instead of 180 ms for the donations of 2,000
    tagged donors when the tag was matched by name inside the query)."""
    if tag == {}:  # not scoped here: the caller's scope and the links' rule keep it in the organisation
        return DonorTag.objects.alias(name_lower=Lower("tag__name")).filter(name_lower=name.strip().lower()).values("donor_id")
    return DonorTag.objects.filter(tag_id=tag["id"] if tag else "").values("donor_id")


def donors_with_tag(queryset: QuerySet, name: str) -> QuerySet:
    """Donors of `queryset` carrying the tag `name` (ignoring case); none when no such tag.
    Matched on the donor row's own `tags` (the names of its DonorTag links, kept in
    the same transaction as they change; GIN index donor_tags_gin) by the tag's exact
    name: the list's order is walked checking the row it reads anyway (1.2 ms for
    the first page of 2,000 tagged donors of 200k, not 4.9 ms probing the links per
    donor), and a rare tag's few donors come from the index."""
    tag = _scoped_tag(queryset, name)
    if not tag:  # no such tag (matches nothing), or not scoped here
        return queryset.filter(pk__in=_tagged_donor_ids(queryset, name, tag))
    return queryset.filter(tags__contains=[tag["name"]])


def donations_with_tag(queryset: QuerySet, name: str) -> QuerySet:
    """Donations of `queryset` whose donor carries the tag `name` (ignoring case); none
    when no such tag. Probes the links' (donor, tag) index per gift walked: cheaper
    than reading each gift's donor row (6 ms against 50 ms for the 26 largest gifts
    of 2,000 tagged donors among 1M)."""
    return queryset.filter(donor_id__in=_tagged_donor_ids(queryset, name, _scoped_tag(queryset, name)))


def filter_by_tag(queryset: QuerySet, name: str, value: str) -> QuerySet:
    """django-filter's `?tag=` on donors and donations (the filtersets share it)."""
    if not value or not value.strip():
        return queryset
    if queryset.model is Donor:
        return donors_with_tag(queryset, value)
    return donations_with_tag(queryset, value)


EMPLOYER_OPTIONS_MAX = 20


def employer_options(*, organisation: Organisation, q: str = "", current_id: str | None = None,
                     limit: int = EMPLOYER_OPTIONS_MAX) -> list[dict]:
    """The ORGANISATION donors a donor form offers as employers, `{id, name}`: the
    current one, and those whose name or email holds every word typed (the donors'
    trigram index, as the gift form's type-ahead), largest givers first."""
    scoped = Donor.objects.for_organisation(organisation).filter(donor_type=DonorType.ORGANISATION)
    rows = []
    if current_id:
        rows += list(scoped.filter(pk=current_id).values("id", "organisation_name", "email"))
    terms = (q or "").strip().lower().split()[:5]
    if terms and not (len(terms) == 1 and terms[0] == (current_id or "").lower()):
        matches = scoped.exclude(pk=current_id or "")
        for term in terms:
            matches = matches.filter(search_text__contains=term)
        rows += list(matches.order_by("-donations_total_cents", "id").values("id", "organisation_name", "email")[:limit])
    return [{"id": r["id"], "name": r["organisation_name"] or r["email"] or r["id"]} for r in rows]


def donor_links(*, organisation: Organisation, donor: Donor, limit: int = 50) -> dict:
    """What a donor page shows of the employer link: the donor's employer and the
    donors naming this one as theirs (the first `limit`, and how many in all)."""
    scoped = Donor.objects.for_organisation(organisation)
    employer = scoped.filter(pk=donor.employer_id).first() if donor.employer_id else None
    employees = list(scoped.filter(employer_id=donor.id).order_by("last_name", "first_name", "id")[:limit])
    count = len(employees) if len(employees) < limit else scoped.filter(employer_id=donor.id).count()
    return {"employer": employer, "employees": employees, "employees_count": count}

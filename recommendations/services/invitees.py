"""An invitee without an organisation on Together: sign up, or add one, to accept an introduction."""
from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from organisations.models import Organisation, Role
from organisations.services import membership_set, organisation_create
from together.exceptions import Conflict, ValidationFailed

SLUG_ATTEMPTS = 8


def _slug_base(name: str) -> str:
    """The slug a name suggests: lower-case words joined by hyphens, at most 60
    characters, never ending in '-sandbox' (the twin's suffix)."""
    base = (slugify(name) or "org")[:60].strip("-") or "org"
    if base.endswith("-sandbox"):
        base = base[: -len("-sandbox")].strip("-") or "org"
    return base


def organisation_create_named(*, name: str, owner_email: str | None = None, owner_password: str | None = None) -> Organisation:
    """organisation_create with a slug made from `name`: its own, or with a
    random suffix when taken. organisation_create alone decides what is taken (a
    live slug or its sandbox twin's), and the database's unique slug settles a
    race between two sign-ups: the loser tries the next suffix."""
    base = _slug_base(name)
    slug = base
    for _attempt in range(SLUG_ATTEMPTS):
        try:
            with transaction.atomic():
                return organisation_create(name=name, slug=slug, owner_email=owner_email, owner_password=owner_password)
        except Conflict as exc:
            if exc.param != "slug":
                raise
        except IntegrityError:
            pass  # taken between the check and the insert
        slug = f"{base}-{secrets.token_hex(2)}"
    raise Conflict("Could not find a free address for this organisation name; try a slightly different name.",
                   param="organisation_name")


@transaction.atomic
def invitee_organisation_create(*, user, name: str) -> Organisation:
    """A signed-in invitee adds an organisation (its ADMIN) to accept an introduction with."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("An organisation needs a name.", param="organisation_name")
    organisation = organisation_create_named(name=name)
    membership_set(organisation=organisation, user=user, role=Role.ADMIN)
    return organisation


@transaction.atomic
def invitee_signup(*, full_name: str, email: str, password: str, organisation_name: str):
    """A new account, its name, and its organisation (it the ADMIN), all or nothing.
    The password is checked by the site's validators; an email with an account is refused."""
    email = (email or "").strip().lower()
    if get_user_model().objects.filter(email__iexact=email).exists():
        raise Conflict("An account with this email exists: sign in instead.", param="email")
    try:
        password_validation.validate_password(password)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), param="password") from None
    name = (organisation_name or "").strip()
    if not name:
        raise ValidationFailed("An organisation needs a name.", param="organisation_name")
    organisation_create_named(name=name, owner_email=email, owner_password=password)
    user = get_user_model().objects.get(email__iexact=email)
    user.first_name, _, user.last_name = (full_name or "").strip().partition(" ")
    user.save(update_fields=["first_name", "last_name"])
    return user

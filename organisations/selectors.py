from __future__ import annotations

import hmac

from organisations.models import ApiKey, Membership, Organisation
from organisations.services import KEY_PREFIX_LENGTH


def api_key_authenticate(*, plaintext: str) -> ApiKey | None:
    """The active key for this plaintext, or None. Constant-time hash comparison."""
    if not plaintext.startswith("pc_") or len(plaintext) < 3 + KEY_PREFIX_LENGTH + 8:
        return None
    prefix = plaintext[3 : 3 + KEY_PREFIX_LENGTH]
    key = ApiKey.objects.select_related("organisation").filter(prefix=prefix).first()
    if key is None:
        hmac.compare_digest("0" * 64, ApiKey.hash_plaintext(plaintext))
        return None
    if not hmac.compare_digest(key.hashed_key, ApiKey.hash_plaintext(plaintext)):
        return None
    if key.revoked_at is not None:
        return None
    return key



def role_for(*, user, organisation: Organisation) -> str | None:
    """The user's role on this organisation (a sandbox inherits its live twin's)."""
    if user is None or not user.is_authenticated:
        return None
    live = organisation.live_organisation_id if organisation.is_sandbox else organisation.id
    return Membership.objects.filter(user=user, organisation_id=live).values_list("role", flat=True).first()

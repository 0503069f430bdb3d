"""Every state change of recommendations: distribution passphrases, recipient
account links, introductions, recommendation sets and split gifts.

The API, the dashboard pages, the admin and the Celery sweep all call these.
Each writes an audit entry whose `action` is the dotted event type and whose
`after` is the object exactly as the API renders it.
"""
from recommendations.services._common import ServiceUnavailable
from recommendations.services.card import CARD_UNAVAILABLE, recommendation_split_payment_start
from recommendations.services.introductions import (
    INTRODUCTION_TTL, CreatedIntroduction, introduction_accept, introduction_create, introduction_eligible_organisations,
    introduction_expire_due, introduction_expire_if_due, introduction_get_by_token, introduction_invite_url,
    introduction_link, introduction_revoke, introduction_view, token_hash,
)
from recommendations.services.invitees import invitee_organisation_create, invitee_signup, organisation_create_named
from recommendations.services.links import (
    FAILED_ATTEMPT_LIMIT, FAILED_ATTEMPT_WINDOW_SECONDS, PASSPHRASE_WORDS, CreatedPassphrase,
    distribution_passphrase_generate, distribution_passphrase_revoke, failed_attempts_reset, passphrase_entropy_bits,
    passphrase_hash, passphrase_normalise, recipient_link_exchange, recipient_link_set_active_by_recipient,
    recipient_link_update, wordlist,
)
from recommendations.services.sets import (
    MAX_ALLOCATIONS, MAX_AMOUNT_CENTS, recommendation_set_create, recommendation_set_delete, recommendation_set_update,
)
from recommendations.services.splits import (
    MIN_EDITABLE_AMOUNT_CENTS, clean_donor_details, recommendation_split_pledge, recommendation_split_record,
    recommendation_split_validate,
)

__all__ = [
    "ServiceUnavailable",
    "INTRODUCTION_TTL", "CreatedIntroduction", "introduction_accept", "introduction_create",
    "introduction_eligible_organisations", "introduction_expire_due", "introduction_expire_if_due",
    "introduction_get_by_token", "introduction_invite_url", "introduction_link", "introduction_revoke",
    "introduction_view", "token_hash",
    "invitee_organisation_create", "invitee_signup", "organisation_create_named",
    "FAILED_ATTEMPT_LIMIT", "FAILED_ATTEMPT_WINDOW_SECONDS", "PASSPHRASE_WORDS", "CreatedPassphrase",
    "distribution_passphrase_generate", "distribution_passphrase_revoke", "failed_attempts_reset",
    "passphrase_entropy_bits", "passphrase_hash", "passphrase_normalise", "recipient_link_exchange",
    "recipient_link_set_active_by_recipient", "recipient_link_update", "wordlist",
    "MAX_ALLOCATIONS", "MAX_AMOUNT_CENTS", "recommendation_set_create", "recommendation_set_delete",
    "recommendation_set_update",
    "MIN_EDITABLE_AMOUNT_CENTS", "clean_donor_details", "recommendation_split_pledge", "recommendation_split_record",
    "recommendation_split_validate",
    "CARD_UNAVAILABLE", "recommendation_split_payment_start",
]

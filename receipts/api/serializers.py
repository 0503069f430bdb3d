"""The receipt object of the API and of `receipt.*` events (output only)."""
from rest_framework import serializers

from receipts.models import Deductibility, ReceiptKind, ReceiptStatus


class ReceiptSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The receipt's id.")
    object = serializers.CharField(help_text="Always `receipt`.")
    number = serializers.IntegerField(help_text="The organisation's receipt number: consecutive, never reused.")
    kind = serializers.ChoiceField(choices=ReceiptKind.choices,
                                   help_text="RECEIPT for money; ACKNOWLEDGEMENT for a gift in kind (fair value stated, not deductible).")
    status = serializers.ChoiceField(choices=ReceiptStatus.choices,
                                     help_text="ISSUED, or WITHDRAWN (kept, with the reason; a correction names its replacement).")
    donation_id = serializers.CharField(help_text="The gift it receipts.")
    donor_id = serializers.CharField(help_text="The donor it was issued to.")
    amount_cents = serializers.IntegerField(help_text="The amount receipted: the gift less any refund (in kind: its fair value).")
    currency = serializers.CharField(help_text="ISO 4217.")
    donation_date = serializers.DateField(help_text="The date of the gift, as the receipt states it.")
    deductibility = serializers.ChoiceField(choices=Deductibility.choices, help_text="What the receipt says about tax: NONE, DGR (Division 30) or POLITICAL (Subdivision 30-DA). Always NONE for an acknowledgement.")
    issued_at = serializers.DateTimeField(help_text="When it was issued.")
    emailed_at = serializers.DateTimeField(allow_null=True, help_text="When it was last emailed to the donor.")
    withdrawn_at = serializers.DateTimeField(allow_null=True, help_text="When it was withdrawn; null while it stands.")
    withdraw_reason = serializers.CharField(allow_null=True, help_text="Why it was withdrawn (a void, a full refund, a correction, or staff's reason).")
    replaced_by_id = serializers.CharField(allow_null=True, help_text="A corrected receipt: the receipt issued in its place.")

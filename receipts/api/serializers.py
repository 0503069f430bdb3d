"""The receipt object of the API and of `receipt.*` events (output only)."""
from rest_framework import serializers

from receipts.models import Deductibility, ReceiptKind, ReceiptStatus


class ReceiptSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(help_text="Always `receipt`.")
    number = serializers.IntegerField(help_text="The organisation's receipt number: consecutive, never reused.")
    kind = serializers.ChoiceField(choices=ReceiptKind.choices,
                                   help_text="RECEIPT for money; ACKNOWLEDGEMENT for a gift in kind (fair value stated, not deductible).")
    status = serializers.ChoiceField(choices=ReceiptStatus.choices,
                                     help_text="ISSUED, or WITHDRAWN (kept, with the reason; a correction names its replacement).")
    donation_id = serializers.CharField()
    donor_id = serializers.CharField()
    amount_cents = serializers.IntegerField(help_text="The amount receipted: the gift less any refund (in kind: its fair value).")
    currency = serializers.CharField()
    donation_date = serializers.DateField()
    deductibility = serializers.ChoiceField(choices=Deductibility.choices)
    issued_at = serializers.DateTimeField()
    emailed_at = serializers.DateTimeField(allow_null=True, help_text="When it was last emailed to the donor.")
    withdrawn_at = serializers.DateTimeField(allow_null=True)
    withdraw_reason = serializers.CharField(allow_null=True)
    replaced_by_id = serializers.CharField(allow_null=True, help_text="A corrected receipt: the receipt issued in its place.")

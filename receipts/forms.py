"""Dashboard forms of receipts: input only (the services decide)."""
from django import forms

from donations.models import Acknowledgement
from receipts.abn import abn_is_valid
from receipts.models import Deductibility, ReceiptingMode

ACK_CHOICES = [(Acknowledgement.NEEDS_RECEIPT, "Receipt this gift"), (Acknowledgement.DO_NOT_RECEIPT, "Do not receipt")]


class ReceiptSettingsForm(forms.Form):
    legal_name = forms.CharField(max_length=200, help_text="The organisation's legal name, printed on every receipt.")
    fund_name = forms.CharField(max_length=200, required=False,
                                help_text="DGR only: the name of the fund, authority or institution gifts go to, if not the legal name.")
    abn = forms.CharField(label="ABN", max_length=20, required=False, help_text="11 digits; spaces are fine.")
    address = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    signatory_name = forms.CharField(max_length=200, required=False)
    signatory_title = forms.CharField(max_length=200, required=False)
    deductibility = forms.ChoiceField(choices=Deductibility.choices, widget=forms.RadioSelect,
                                      help_text="What the receipt says about tax. In-kind gifts always get an acknowledgement, not a deductible receipt.")
    mode = forms.ChoiceField(label="Receipting", choices=ReceiptingMode.choices, widget=forms.RadioSelect)
    wording = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                              help_text="A thank-you note printed on every receipt.")
    email_subject = forms.CharField(max_length=200, required=False, help_text="Blank: “Your receipt N from …”.")
    email_body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                 help_text="A paragraph added to the email that carries the receipt.")

    def clean_abn(self):
        value = self.cleaned_data["abn"]
        if value and not abn_is_valid(value):
            raise forms.ValidationError("This is not a valid ABN (11 digits, and the checksum does not match).")
        return value


class ReceiptRunForm(forms.Form):
    date_from = forms.DateField(label="Gifts dated from", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(label="to", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


class AcknowledgementForm(forms.Form):
    status = forms.ChoiceField(choices=ACK_CHOICES, label="Receipting")


class WithdrawForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Kept with the receipt.")

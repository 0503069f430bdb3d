from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from organisations import services
from organisations.models import Role, Scope
from together.ratelimit import client_bucket, client_ip


def _client_ip(request) -> str:
    """The client's address as every per-client limit sees it (CLIENT_IP_HEADER behind our proxy)."""
    return client_bucket(client_ip(request)) if request else "unknown"


class ThrottledAuthenticationForm(AuthenticationForm):
    """Five failed sign-ins for one email from one address lock it for 15
    minutes (organisations.services: signin_attempt_reserve). The attempt is
    reserved before the password is checked, so parallel guesses cannot
    overshoot the limit."""

    username = forms.CharField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password. The password is case-sensitive.",
        "throttled": "Too many failed sign-ins. Wait 15 minutes, or reset your password.",
    }

    def clean_username(self) -> str:
        # Accounts are stored under the lower-cased email (user_get_or_create); "Ada@Example.org" is the same person.
        return (self.cleaned_data.get("username") or "").strip().lower()

    def clean(self):
        email = self.cleaned_data.get("username")
        if not (email and self.cleaned_data.get("password")):
            return super().clean()  # no password is checked: nothing to count
        client_ip = _client_ip(self.request)
        if not services.signin_attempt_reserve(email=email, client_ip=client_ip).allowed:
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        cleaned = super().clean()  # a wrong password raises here and keeps its attempt counted
        services.signin_attempt_refund(email=email, client_ip=client_ip)
        return cleaned


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, e.g. 'CRM sync'.")
    scope = forms.ChoiceField(choices=Scope.choices, widget=forms.RadioSelect, initial=Scope.READ,
                              help_text="READ may only read. WRITE may also create, change and delete.")


class InviteForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Full name")
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class RoleForm(forms.Form):
    user_id = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Role.choices)


class JoinForm(forms.Form):
    """The first password of a brand-new account. Never offered for an account that exists."""

    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), label="Choose a password")


class StripeAccountForm(forms.Form):
    account_id = forms.CharField(
        max_length=255, label="Stripe account id",
        help_text="Your connected account's id from Stripe's dashboard: acct_ followed by letters and digits.",
        widget=forms.TextInput(attrs={"placeholder": "acct_…", "autocomplete": "off", "spellcheck": "false"}),
    )

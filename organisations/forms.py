from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

from organisations.models import Role, Scope

FAILED_LOGIN_LIMIT = 5
FAILED_LOGIN_WINDOW = 15 * 60


def _client_ip(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request else "unknown"


class ThrottledAuthenticationForm(AuthenticationForm):
    """Five failed sign-ins for one email from one address lock it for 15 minutes."""

    username = forms.CharField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Please enter a correct email and password. The password is case-sensitive.",
    }

    def clean_username(self) -> str:
        # Accounts are stored under the lower-cased email (user_get_or_create); "Ada@Example.org" is the same person.
        return (self.cleaned_data.get("username") or "").strip().lower()

    def _key(self) -> str:
        username = (self.data.get("username") or "").strip().lower()
        return f"login-fail:{username}:{_client_ip(self.request)}"

    def clean(self):
        try:
            failures = cache.get(self._key(), 0)
        except Exception:  # noqa: BLE001 - Redis down: no throttle, never a 500
            failures = 0
        if failures >= FAILED_LOGIN_LIMIT:
            raise forms.ValidationError("Too many failed sign-ins. Wait 15 minutes, or reset your password.", code="throttled")
        try:
            return super().clean()
        except forms.ValidationError:
            try:
                if not cache.add(self._key(), 1, FAILED_LOGIN_WINDOW):
                    cache.incr(self._key())
            except Exception:  # noqa: BLE001
                pass
            raise


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
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), label="Choose a password")

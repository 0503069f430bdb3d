"""Admin machinery: forms that write through the services, never around them."""
from __future__ import annotations

from django import forms
from django.contrib import admin

from together.actors import Actor
from together.exceptions import ApplicationError


class ServiceForm(forms.ModelForm):
    """A ModelForm whose save is a service call made during validation, so that a
    refusal (a cap, a duplicate email) shows beside its field and nothing is stored.

    Subclasses implement `call_service(actor, data) -> instance`."""

    request = None

    def call_service(self, actor: Actor, data: dict):
        raise NotImplementedError

    def _post_clean(self):
        if self.errors:
            return
        actor = Actor.for_user(self.request.user, getattr(self.request, "request_id", "")) if self.request else Actor.system("admin")
        try:
            self.instance = self.call_service(actor, self.cleaned_data)
        except ApplicationError as exc:
            field = exc.param if exc.param in self.fields else None
            if field and exc.param.endswith("_id") and exc.param[:-3] in self.fields:
                field = exc.param[:-3]
            self.add_error(field if field in self.fields else None, exc.message)

    def save(self, commit=True):
        return self.instance


class ServiceAdmin(admin.ModelAdmin):
    """Adds and edits go through `form.call_service`; deletes are not offered."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request
        return form

    def save_model(self, request, obj, form, change):
        pass  # the service already saved it, inside the admin's transaction

    def save_related(self, request, form, formsets, change):
        pass

    def has_delete_permission(self, request, obj=None):
        return False

"""Admin machinery: forms that write through the services, never around them.

Validation writes nothing: `is_valid()` checks the input, and the service is
called once, by `ServiceForm.save()`, which the admin calls (`save_form`) after
validation, inside its transaction. A refusal from the service (a cap, a
duplicate email) rolls that transaction back and the admin shows the same form
again with the refusal beside its field (`ServiceAdmin.changeform_view`).
"""
from __future__ import annotations

from django import forms
from django.contrib import admin

from together.actors import Actor
from together.dashboard import add_service_error
from together.exceptions import ApplicationError


class ServiceRefused(Exception):
    """Raised by `ServiceForm.save()` to leave the admin's transaction."""

    def __init__(self, error: ApplicationError):
        super().__init__(error.message)
        self.error = error


class ServiceForm(forms.ModelForm):
    """A ModelForm whose save is a service call.

    Subclasses implement `call_service(actor, data) -> instance`."""

    request = None
    # A refusal from the previous attempt at saving this same POST (set by the admin).
    refusal: ApplicationError | None = None

    def call_service(self, actor: Actor, data: dict):
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        if self.refusal is not None:
            add_service_error(self, self.refusal)
        return cleaned

    def actor(self) -> Actor:
        request = self.request
        return Actor.for_user(request.user, getattr(request, "request_id", "")) if request else Actor.system("admin")

    def save(self, commit=True):
        try:
            self.instance = self.call_service(self.actor(), self.cleaned_data)
        except ApplicationError as exc:
            raise ServiceRefused(exc) from exc
        return self.instance


class ServiceAdmin(admin.ModelAdmin):
    """Adds and edits go through `form.call_service` (`save_form` saves the form);
    deletes are not offered."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request
        form.refusal = getattr(request, "_service_refusal", None)
        return form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            # The admin's transaction is rolled back; the same POST is shown again,
            # its form invalid with the service's message beside the field.
            request._service_refusal = refused.error
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        pass  # save_form's form.save() called the service, which stored it

    def save_related(self, request, form, formsets, change):
        pass

    def has_delete_permission(self, request, obj=None):
        return False

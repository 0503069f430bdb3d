"""Dashboard: Settings → Webhooks (endpoints, recent deliveries, retry, test,
rotate secret). ADMINs manage; other roles read. Every change is a service call."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from organisations.models import Role
from organisations.session import DashboardMixin
from together.dashboard import call_service
from together.exceptions import ApplicationError
from webhooks import services
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookDelivery, WebhookEndpoint


class EndpointForm(forms.Form):
    url = forms.CharField(max_length=2000, label="Endpoint URL", help_text="https, reachable from the internet.")
    description = forms.CharField(max_length=500, required=False)
    enabled_events = forms.MultipleChoiceField(
        choices=[("*", "All events")] + [(t, t) for t in sorted(EVENT_TYPES)], initial=["*"],
        widget=forms.SelectMultiple(attrs={"size": 8}), label="Events",
    )


class WebhooksView(DashboardMixin, View):
    required_role = Role.VIEWER
    write_role = Role.ADMIN

    def page(self, request, form=None, secret=None, status=200):
        endpoints = self.scoped(WebhookEndpoint).order_by("-created_at")
        deliveries = (self.scoped(WebhookDelivery)
                      .select_related("endpoint", "event").order_by("-created_at")[:50])
        return render(request, "webhooks/settings.html", {
            "form": form or EndpointForm(), "endpoints": endpoints, "deliveries": deliveries, "secret": secret,
            "nav": "settings", "page_title": "Webhooks",
        }, status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        org, actor = request.organisation, request.actor
        action = request.POST.get("action", "create")
        if action == "create":
            form = EndpointForm(request.POST)
            if form.is_valid():
                created = call_service(form, services.webhook_endpoint_create, organisation=org, actor=actor, **form.cleaned_data)
                if created:
                    response = self.page(request, secret={"endpoint": created.endpoint, "value": created.secret})
                    response["Cache-Control"] = "no-store"
                    return response
            return self.page(request, form, status=400)
        target = request.POST.get("id", "")
        try:
            if action == "rotate":
                rotated = services.webhook_endpoint_rotate_secret(organisation=org, actor=actor, endpoint_id=target)
                response = self.page(request, secret={"endpoint": rotated.endpoint, "value": rotated.secret, "rotated": True})
                response["Cache-Control"] = "no-store"
                return response
            if action == "test":
                services.webhook_endpoint_test(organisation=org, actor=actor, endpoint_id=target)
                messages.success(request, "Test event queued; it appears under recent deliveries.")
            elif action == "retry":
                services.webhook_delivery_retry(organisation=org, actor=actor, delivery_id=target)
                messages.success(request, "Delivery queued for another attempt.")
            elif action in ("enable", "disable"):
                services.webhook_endpoint_update(organisation=org, actor=actor, endpoint_id=target,
                                                 status="ENABLED" if action == "enable" else "DISABLED")
                messages.success(request, f"Endpoint {action}d.")
            elif action == "delete":
                services.webhook_endpoint_delete(organisation=org, actor=actor, endpoint_id=target)
                messages.success(request, "Endpoint deleted.")
            else:
                raise Http404("Unknown action")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("settings-webhooks")

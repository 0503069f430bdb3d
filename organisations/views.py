"""Dashboard: sign-in, organisation switching, API keys and the team."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.views import View
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from organisations import services
from organisations.forms import ApiKeyCreateForm, InviteForm, JoinForm, RoleForm, StripeAccountForm, ThrottledAuthenticationForm
from organisations.models import ApiKey, AuditEntry, Invitation, Membership, Organisation, Role
from organisations.session import DashboardMixin, memberships_of, resolve_active, set_active
from together.dashboard import call_service


class SignInView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        memberships = memberships_of(form.get_user())
        if len(memberships) > 1 and not self.request.POST.get("next"):
            return redirect("org-picker")
        return response


class OrganisationPickerView(View):
    def get(self, request):
        if not request.user.is_authenticated:
            return redirect("login")
        return render(request, "organisations/picker.html", {"memberships": memberships_of(request.user), "page_title": "Choose an organisation"})

    def post(self, request):
        if not request.user.is_authenticated:
            return redirect("login")
        wanted = request.POST.get("organisation_id")
        membership = next((m for m in memberships_of(request.user) if m.organisation_id == wanted), None)
        if membership is None:
            raise Http404("No such organisation")
        response = redirect("home")
        set_active(response, membership.organisation)
        return response


@require_POST
def sandbox_toggle(request):
    active = resolve_active(request)
    if active is None:
        return redirect("login")
    organisation, _role = active
    target = organisation.live_organisation if organisation.is_sandbox else Organisation.objects.get(live_organisation=organisation)
    back = request.POST.get("next") or request.META.get("HTTP_REFERER") or reverse("home")
    # Only back to this site: "//evil.example" and "/\\evil.example" start with a slash and still leave it.
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("home")
    else:
        # A page of one record (/donors/<id>/) has no twin on the other side: land on its list or home instead.
        try:
            match = resolve(urlsplit(back).path)
        except Resolver404:
            match = None
        if match is None or match.kwargs:
            back = reverse("home")
    response = HttpResponseRedirect(back)
    set_active(response, target)
    return response


class ApiKeysView(DashboardMixin, View):
    """Settings → API: ADMINs create and revoke keys; the plaintext shows exactly once."""

    required_role = Role.ADMIN
    write_role = Role.ADMIN

    def page(self, request, form=None, created=None):
        keys = self.scoped(ApiKey).select_related("created_by").order_by("-created_at")[:200]
        return render(request, "organisations/api_keys.html", {
            "form": form or ApiKeyCreateForm(), "keys": keys, "created": created, "nav": "settings", "page_title": "API keys",
        })

    def get(self, request):
        return self.page(request)

    def post(self, request):
        if "revoke" in request.POST:
            key = self.scoped(ApiKey).filter(pk=request.POST["revoke"]).first()
            if key is None:
                raise Http404("No such key")
            services.api_key_revoke(organisation=request.organisation, actor=request.actor, api_key_id=key.id)
            messages.success(request, f"Key {key.name} ({key.prefix}…) revoked. Requests with it now get 401.")
            return redirect("settings-api")
        form = ApiKeyCreateForm(request.POST)
        created = None
        if form.is_valid():
            created = call_service(form, services.api_key_create, organisation=request.organisation, actor=request.actor,
                                   name=form.cleaned_data["name"], scope=form.cleaned_data["scope"])
            if created:
                form = ApiKeyCreateForm()
        response = self.page(request, form, created)
        response["Cache-Control"] = "no-store"
        return response


class TeamView(DashboardMixin, View):
    """Settings → Users: invite, change role, revoke an invitation, remove a member."""

    required_role = Role.ADMIN
    write_role = Role.ADMIN

    def page(self, request, form=None):
        # The join link is never shown here: it goes to the invitee's inbox only (staff may Resend, not read it).
        live = request.organisation.live
        return render(request, "organisations/team.html", {
            "form": form or InviteForm(),
            "members": Membership.objects.filter(organisation=live).select_related("user").order_by("user__email"),
            "invitations": Invitation.objects.filter(organisation=live, accepted_at__isnull=True).order_by("-created_at")[:100],
            "roles": Role.choices, "nav": "settings", "page_title": "Users",
        })

    def get(self, request):
        return self.page(request)

    def post(self, request):
        action = request.POST.get("action")
        org, actor = request.organisation, request.actor
        if action == "invite":
            form = InviteForm(request.POST)
            if form.is_valid():
                invitation = call_service(form, services.invitation_create, organisation=org, actor=actor, **form.cleaned_data)
                if invitation:
                    messages.success(request, f"Invitation emailed to {invitation.email}.")
                    return redirect("settings-users")
            return self.page(request, form)
        if action == "role":
            form = RoleForm(request.POST)
            if form.is_valid() and call_service(form, services.membership_change_role, organisation=org, actor=actor, **form.cleaned_data):
                messages.success(request, "Role changed.")
            else:
                messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs) or "Role not changed.")
        elif action == "revoke":
            try:
                services.invitation_revoke(organisation=org, actor=actor, invitation_id=request.POST.get("invitation_id", ""))
                messages.success(request, "Invitation revoked.")
            except Exception as exc:  # noqa: BLE001 - ApplicationError / NotFound shown to the admin
                messages.error(request, getattr(exc, "message", "Could not revoke."))
        elif action == "resend":
            try:
                invitation = services.invitation_resend(organisation=org, actor=actor,
                                                        invitation_id=request.POST.get("invitation_id", ""))
                messages.success(request, f"Invitation emailed again to {invitation.email}; the previous link no longer works.")
            except Exception as exc:  # noqa: BLE001 - ApplicationError / NotFound shown to the admin
                messages.error(request, getattr(exc, "message", "Could not resend."))
        elif action == "remove":
            try:
                services.membership_remove(organisation=org, actor=actor, user_id=int(request.POST.get("user_id", "0")))
                messages.success(request, "Member removed; their sessions have ended.")
            except Exception as exc:  # noqa: BLE001
                messages.error(request, getattr(exc, "message", "Could not remove."))
        return redirect("settings-users")


class PaymentsSettingsView(DashboardMixin, View):
    """Settings → Payments: the organisation's Stripe account. Everyone sees whether it
    is Connected; only ADMINs connect or disconnect it. No form or link takes
    payments until it is connected."""

    required_role = Role.VIEWER
    write_role = Role.ADMIN

    def page(self, request, form=None, status=200):
        org = Organisation.objects.get(pk=request.organisation.pk)
        refunded = (AuditEntry.objects.for_organisation(org).filter(action="payment.refunded_over_cap")
                    .order_by("-created_at")[:20])
        response = render(request, "organisations/payments.html", {
            "org": org, "form": form or StripeAccountForm(initial={"account_id": org.stripe_account_id or ""}),
            "refunded_over_cap": refunded, "nav": "settings", "page_title": "Payments",
        }, status=status)
        response["Cache-Control"] = "no-store"
        return response

    def get(self, request):
        return self.page(request)

    def post(self, request):
        org, actor = request.organisation, request.actor
        if request.POST.get("action") == "disconnect":
            services.organisation_stripe_disconnect(organisation=org, actor=actor)
            messages.success(request, "Stripe disconnected: forms and checkout links no longer take payments.")
            return redirect("settings-payments")
        form = StripeAccountForm(request.POST)
        if form.is_valid() and call_service(form, services.organisation_stripe_connect, organisation=org, actor=actor,
                                            account_id=form.cleaned_data["account_id"]):
            messages.success(request, "Stripe connected: forms and checkout links can take card payments.")
            return redirect("settings-payments")
        return self.page(request, form, status=400)


class JoinView(View):
    """/join/<token>. An invitation to an email that already has an account is
    accepted only by that account, signed in as itself: it just joins, and its
    password is never asked for or changed. Only a brand-new account chooses
    its first password here."""

    def context(self, request, invitation, form=None):
        ctx = {"invitation": invitation, "page_title": "Join"}
        if invitation is None:
            return ctx
        account = services.invitation_account(invitation=invitation)
        user = request.user
        ctx["existing_account"] = account is not None
        ctx["signed_in_as_invitee"] = bool(user.is_authenticated and account is not None and user.pk == account.pk)
        ctx["signed_in_as_other"] = bool(user.is_authenticated and not ctx["signed_in_as_invitee"])
        ctx["login_url"] = f"{reverse('login')}?{urlencode({'next': request.path})}"
        if account is None:
            ctx["form"] = form or JoinForm()
        elif form is not None and form.errors:
            ctx["errors"] = [e for errs in form.errors.values() for e in errs]
        return ctx

    def respond(self, request, invitation, form=None, status=200):
        response = render(request, "organisations/join.html", self.context(request, invitation, form), status=status)
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
        return response

    def get(self, request, token):
        return self.respond(request, services.invitation_for_token(token=token))

    def post(self, request, token):
        invitation = services.invitation_for_token(token=token)
        if invitation is None:
            return self.respond(request, None)
        if services.invitation_account(invitation=invitation) is not None:
            # An existing account: join as the signed-in user, never by a password posted here.
            form = forms.Form(request.POST)
            form.is_valid()
            user = call_service(form, services.invitation_accept, token=token, user=request.user)
            if not user:
                return self.respond(request, invitation, form, status=403)
        else:
            form = JoinForm(request.POST)
            if not form.is_valid():
                return self.respond(request, invitation, form)
            user = call_service(form, services.invitation_accept_new_account, token=token,
                                password=form.cleaned_data["password"])
            if not user:
                return self.respond(request, invitation, form)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        response = redirect("home")
        set_active(response, invitation.organisation)
        return response

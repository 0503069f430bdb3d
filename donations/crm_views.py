"""Dashboard pages for tags (issue 19): Donors → Tags (create, rename, delete),
a donor's tags (added and removed from the donor page), and the bulk action on
the donors list's current filter. Thin: the rules are in donations.crm."""
from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Count
from django.http import QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from donations import crm
from donations.api.filters import DonorFilterSet
from donations.models import Donor, Tag
from organisations.session import DashboardMixin
from together.exceptions import ApplicationError

# The donors list's own parameters, never filters.
LIST_ONLY = ("limit", "starting_after", "ending_before", "ordering")


def _names(raw: str) -> list[str]:
    """Names typed into one box, separated by commas."""
    return [n for n in (part.strip() for part in (raw or "").split(",")) if n]


class TagListView(DashboardMixin, View):
    """Donors → Tags: every tag with how many donors carry it; EDITOR and ADMIN
    create, rename and delete (`action`), and tag a filtered list in bulk."""

    def page(self, request, status=200, **extra):
        tags = (self.scoped(Tag).annotate(donors_count=Count("donor_links")).order_by("name", "id"))
        return render(request, "donations/tag_list.html", {"nav": "donors", "page_title": "Tags", "tags": tags, **extra},
                      status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        action = request.POST.get("action", "")
        org, actor = request.organisation, request.actor
        try:
            if action == "create":
                tag = crm.tag_create(organisation=org, actor=actor, name=request.POST.get("name", ""))
                messages.success(request, f"Tag “{tag.name}” created.")
            elif action == "rename":
                tag = crm.tag_rename(organisation=org, actor=actor, tag_id=request.POST.get("tag_id", ""),
                                     name=request.POST.get("name", ""))
                messages.success(request, f"Tag renamed to “{tag.name}”.")
            elif action == "delete":
                crm.tag_delete(organisation=org, actor=actor, tag_id=request.POST.get("tag_id", ""))
                messages.success(request, "Tag deleted; its donors no longer carry it.")
            elif action in ("bulk_add", "bulk_remove"):
                return self.bulk(request, remove=action == "bulk_remove")
            else:
                messages.error(request, "Unknown action.")
                return self.page(request, status=400)
        except ApplicationError as exc:
            return self.page(request, status=400, error=exc.message, error_tag_id=request.POST.get("tag_id", ""),
                             typed=request.POST.get("name", ""))
        return redirect("donor-tags")

    def bulk(self, request, *, remove: bool):
        """The donors list's current filter (its query string, sent back in `filter`)."""
        query = QueryDict(request.POST.get("filter", ""))
        data = {k: v for k, v in query.items() if v != "" and k not in LIST_ONLY}
        back = reverse("donors") + ("?" + urlencode(data) if data else "")
        filterset = DonorFilterSet(data=data, queryset=self.scoped(Donor), request=request)
        if not filterset.is_valid():
            messages.error(request, "The list's filter is not valid: " + "; ".join(
                f"{k}: {' '.join(v)}" for k, v in filterset.errors.items()))
            return redirect(back)
        try:
            changed = crm.donors_tag_bulk(organisation=request.organisation, actor=request.actor, donors=filterset.qs,
                                          names=_names(request.POST.get("tags", "")), remove=remove)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(back)
        names = ", ".join(_names(request.POST.get("tags", "")))
        if remove:
            messages.success(request, f"Removed {names} from {changed:,} donor{'s' if changed != 1 else ''}.")
        else:
            messages.success(request, f"Tagged {changed:,} donor{'s' if changed != 1 else ''} with {names}.")
        return redirect(back)


class DonorTagsView(DashboardMixin, View):
    """A donor's tags: shown to everyone; EDITOR and ADMIN add (names separated by
    commas; unknown ones become tags) and remove. The donor page posts here."""

    def get(self, request, pk):
        donor = self.get_scoped_or_404(Donor, pk)
        return render(request, "donations/donor_tags.html", {"nav": "donors", "page_title": f"Tags of {donor.display_name}",
                                                             "donor": donor})

    def post(self, request, pk):
        donor = self.get_scoped_or_404(Donor, pk)
        action = request.POST.get("action", "")
        try:
            if action == "add":
                names = _names(request.POST.get("tags", ""))
                crm.donor_tags_add(organisation=request.organisation, actor=request.actor, donor_id=donor.id, names=names)
                messages.success(request, "Tagged " + ", ".join(names) + ".")
            elif action == "remove":
                name = request.POST.get("name", "")
                crm.donor_tags_remove(organisation=request.organisation, actor=request.actor, donor_id=donor.id, names=[name])
                messages.success(request, f"Removed {name}.")
            else:
                messages.error(request, "Unknown action.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        if request.POST.get("next") == "detail":
            return redirect(reverse("donor-detail", args=[donor.id]) + "#tags-h")
        return redirect("donor-tags-edit", donor.id)


class EmployerOptionsView(DashboardMixin, View):
    """The donor form's employer type-ahead (htmx): <option>s of the ORGANISATION
    donors matching what is typed in `employer_id`."""

    def get(self, request):
        typed = request.GET.get("employer_id", "")
        options = crm.employer_options(organisation=request.organisation, q=typed) if len(typed.strip()) >= 2 else []
        return render(request, "donations/_employer_options.html", {"options": options, "wrap": False})

from django.urls import path

from engage import views

urlpatterns = [
    path("engage/", views.FormListView.as_view(), name="engage"),
    path("engage/forms/", views.FormListView.as_view(), name="engage-forms"),
    path("engage/forms/new", views.FormEditView.as_view(), name="engage-form-new"),
    path("engage/forms/<str:pk>/", views.FormEditView.as_view(), name="engage-form-edit"),
    path("engage/checkout-links/", views.LinkListView.as_view(), name="engage-links"),
    path("engage/checkout-links/new", views.LinkCreateView.as_view(), name="engage-link-new"),
    path("engage/checkout-links/suggest", views.LinkSuggestView.as_view(), name="engage-link-suggest"),
    path("engage/checkout-links/<str:pk>/", views.LinkDetailView.as_view(), name="engage-link-detail"),
]

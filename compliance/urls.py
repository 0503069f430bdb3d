from django.urls import path

from compliance import views

urlpatterns = [
    path("settings/compliance/revenue-codes", views.RevenueCodesView.as_view(), name="compliance-home"),
    path("settings/compliance/obligations", views.ObligationsView.as_view(), name="compliance-obligations"),
    path("settings/compliance/breaches", views.BreachesView.as_view(), name="compliance-breaches"),
    path("settings/compliance/elections", views.ElectionsView.as_view(), name="compliance-elections"),
    path("settings/compliance", views.SettingsView.as_view(), name="compliance-settings"),
]

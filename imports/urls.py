from django.urls import path

from imports import views

urlpatterns = [
    path("donors/import", views.ImportsView.as_view(), name="imports"),
    path("donors/import/<str:import_id>", views.ImportDetailView.as_view(), name="import-detail"),
    path("donors/import/<str:import_id>/result", views.ImportResultView.as_view(), name="import-result"),
]

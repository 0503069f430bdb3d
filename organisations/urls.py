from django.contrib.auth import views as auth_views
from django.urls import path

from organisations import views

urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("orgs/", views.OrganisationPickerView.as_view(), name="org-picker"),
    path("sandbox-toggle", views.sandbox_toggle, name="sandbox-toggle"),
    path("settings/api", views.ApiKeysView.as_view(), name="settings-api"),
    path("settings/users", views.TeamView.as_view(), name="settings-users"),
    path("settings/payments", views.PaymentsSettingsView.as_view(), name="settings-payments"),
    path("join/<str:token>", views.JoinView.as_view(), name="join"),
]

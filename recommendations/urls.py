from django.urls import path

from recommendations import views

urlpatterns = [
    path("settings/engage/distribution", views.DistributionSettingsView.as_view(), name="distribution-settings"),
    path("introductions/<str:token>", views.IntroductionInviteView.as_view(), name="introduction-invite"),
    path("give/<str:set_id>", views.GivingFormView.as_view(), name="give"),
    path("give/<str:set_id>/intent", views.GivingFormIntentView.as_view(), name="give-intent"),
    path("engage/recommendation-sets", views.RecommendationSetListView.as_view(), name="recommendation-sets"),
    path("engage/recommendation-sets/new", views.RecommendationSetEditView.as_view(), name="recommendation-set-new"),
    path("engage/recommendation-sets/<str:set_id>/edit", views.RecommendationSetEditView.as_view(), name="recommendation-set-edit"),
    path("engage/recommendation-sets/<str:set_id>", views.RecommendationSetGiftsView.as_view(), name="recommendation-set-gifts"),
]

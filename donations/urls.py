from django.urls import path

from donations import crm_views, custom_field_views, views

urlpatterns = [
    path("settings/custom-fields", custom_field_views.CustomFieldListView.as_view(), name="custom-fields"),
    path("settings/custom-fields/<str:pk>", custom_field_views.CustomFieldEditView.as_view(), name="custom-field-edit"),
    path("", views.HomeView.as_view(), name="home"),
    path("alerts/history", views.CapAlertHistoryView.as_view(), name="cap-alert-history"),
    path("donors/", views.DonorListView.as_view(), name="donors"),
    path("donors/new", views.DonorCreateView.as_view(), name="donor-new"),
    path("donors/search", views.DonorSearchView.as_view(), name="donor-search"),
    path("donors/duplicates", views.DuplicatesView.as_view(), name="donor-duplicates"),
    path("donors/tags/", crm_views.TagListView.as_view(), name="donor-tags"),
    path("donors/employer-options", crm_views.EmployerOptionsView.as_view(), name="donor-employer-options"),
    path("donors/<str:pk>/tags", crm_views.DonorTagsView.as_view(), name="donor-tags-edit"),
    path("donors/<str:pk>/", views.DonorDetailView.as_view(), name="donor-detail"),
    path("donors/<str:pk>/edit", views.DonorEditView.as_view(), name="donor-edit"),
    path("gifts/new", views.GiftCreateView.as_view(), name="gift-new"),
    path("gifts/cap-room", views.CapRoomView.as_view(), name="gift-cap-room"),
    path("batches/", views.BatchListView.as_view(), name="batches"),
    path("batches/new", views.BatchEditView.as_view(), name="batch-new"),
    path("batches/<str:pk>/", views.BatchEditView.as_view(), name="batch-edit"),
    path("donations/", views.DonationListView.as_view(), name="donations"),
    path("donations/<str:pk>/", views.DonationDetailView.as_view(), name="donation-detail"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/new", views.CampaignEditView.as_view(), name="campaign-new"),
    path("campaigns/<str:pk>/", views.CampaignEditView.as_view(), name="campaign-edit"),
    path("campaigns/<str:pk>/sources", views.CampaignSourcesView.as_view(), name="campaign-sources"),
]

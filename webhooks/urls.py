from django.urls import path

from webhooks import views

urlpatterns = [path("", views.developer_webhooks, name="developer-webhooks")]

"""The public payment pages of donation forms and checkout links (payments/public.py),
and the donor's own page for a recurring gift (payments/selfservice.py)."""
from django.urls import path

from payments import public, selfservice

urlpatterns = [
    path("donate/<str:slug>", public.DonateView.as_view(), name="donate"),
    path("donate/<str:slug>/intent", public.DonateIntentView.as_view(), name="donate-intent"),
    path("c/<str:code>", public.CheckoutView.as_view(), name="checkout"),
    path("c/<str:code>/intent", public.CheckoutIntentView.as_view(), name="checkout-intent"),
    path("plans/<str:token>", selfservice.PlanManageView.as_view(), name="plan-manage"),
    path("plans/<str:token>/change", selfservice.PlanChangeView.as_view(), name="plan-manage-change"),
    path("plans/<str:token>/pause", selfservice.PlanPauseView.as_view(), name="plan-manage-pause"),
    path("plans/<str:token>/resume", selfservice.PlanResumeView.as_view(), name="plan-manage-resume"),
    path("plans/<str:token>/cancel", selfservice.PlanCancelView.as_view(), name="plan-manage-cancel"),
    path("plans/<str:token>/card/intent", selfservice.PlanCardIntentView.as_view(), name="plan-manage-card-intent"),
    path("plans/<str:token>/card", selfservice.PlanCardSaveView.as_view(), name="plan-manage-card"),
]

from rest_framework.routers import SimpleRouter

from payments.api.views import RecurringPlanViewSet

router = SimpleRouter(trailing_slash=False)
router.register("recurring-plans", RecurringPlanViewSet, basename="recurring-plan")

urlpatterns = router.urls

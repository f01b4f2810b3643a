from rest_framework.routers import DefaultRouter

from alerts.api.views import AlertViewSet
from monitoring.api.views import LabTestViewSet, MonitoringTestViewSet
from patients.api.views import CareTeamViewSet, PatientViewSet

router = DefaultRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("care-teams", CareTeamViewSet, basename="care-team")
router.register("lab-tests", LabTestViewSet, basename="lab-test")
router.register("monitoring-tests", MonitoringTestViewSet, basename="monitoring-test")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = router.urls

from django.urls import path
from rest_framework.routers import DefaultRouter

from accounts.api.views import TokenLoginView, TokenLogoutAllView, TokenLogoutView
from alerts.api.burden import AlertBurdenView
from alerts.api.views import AlertViewSet
from assessments.api.views import AssessmentViewSet
from monitoring.api.views import LabTestViewSet, MonitoringTestViewSet
from orders.api.views import (
    CourseViewSet,
    DoseViewSet,
    DrugViewSet,
    ExposureReportViewSet,
    HoldRuleViewSet,
    PreparationViewSet,
    RegimenViewSet,
    TherapyPlanViewSet,
    TreatmentPlanViewSet,
)
from patients.api.views import CareTeamViewSet, PatientViewSet
from results.api.views import CriticalCallViewSet, ResultViewSet
from specimens.api.views import CollectionListView, ContainerViewSet, RequirementViewSet, SpecimenViewSet

router = DefaultRouter()
router.register("patients", PatientViewSet, basename="patient")
router.register("care-teams", CareTeamViewSet, basename="care-team")
router.register("lab-tests", LabTestViewSet, basename="lab-test")
router.register("monitoring-tests", MonitoringTestViewSet, basename="monitoring-test")
router.register("alerts", AlertViewSet, basename="alert")
router.register("specimens", SpecimenViewSet, basename="specimen")
router.register("containers", ContainerViewSet, basename="container")
router.register("specimen-requirements", RequirementViewSet, basename="specimen-requirement")
router.register("results", ResultViewSet, basename="result")
router.register("critical-calls", CriticalCallViewSet, basename="critical-call")
router.register("assessments", AssessmentViewSet, basename="assessment")
router.register("drugs", DrugViewSet, basename="drug")
router.register("regimens", RegimenViewSet, basename="regimen")
router.register("hold-rules", HoldRuleViewSet, basename="hold-rule")
router.register("courses", CourseViewSet, basename="course")
router.register("therapy-plans", TherapyPlanViewSet, basename="therapy-plan")
router.register("treatment-plans", TreatmentPlanViewSet, basename="treatment-plan")
router.register("doses", DoseViewSet, basename="dose")
router.register("preparations", PreparationViewSet, basename="preparation")
router.register("exposure-reports", ExposureReportViewSet, basename="exposure-report")

# Before the router: its alert detail route would take "burden" for an alert's pk.
urlpatterns = [
    path("auth/login/", TokenLoginView.as_view(), name="token-login"),
    path("auth/logout/", TokenLogoutView.as_view(), name="token-logout"),
    path("auth/logoutall/", TokenLogoutAllView.as_view(), name="token-logoutall"),
    path("collection-list/", CollectionListView.as_view(), name="collection-list"),
    path("alerts/burden/", AlertBurdenView.as_view(), name="alert-burden"),
    *router.urls,
]

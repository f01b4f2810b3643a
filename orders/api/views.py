from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from accounts.selectors import acting_user
from core.api import FileNegotiation, ScopedViewSetMixin, action_permissions
from core.errors import Conflict
from orders.api.serializers import (
    AdministerSerializer,
    CellReceiptSerializer,
    CellThawSerializer,
    CosignSerializer,
    CourseSerializer,
    CourseStartSerializer,
    DoseSerializer,
    DrugSerializer,
    ExclusionSerializer,
    ExposureInputSerializer,
    ExposureReportSerializer,
    FreshCollectSerializer,
    FreshReceiptSerializer,
    HandoffSerializer,
    HoldRuleSerializer,
    IdentityCheckSerializer,
    PreparationSerializer,
    ReasonSerializer,
    RecordSerializer,
    RegimenSerializer,
    RescheduleSerializer,
    RescueCheckSerializer,
    RescueMedicationCheckSerializer,
    TherapyPlanSerializer,
    ToleranceCheckInputSerializer,
    ToleranceCheckSerializer,
    TreatmentPlanSerializer,
    TreatmentPlanStartSerializer,
    VerifySerializer,
    VirusThawSerializer,
)
from orders.cells import cell_product_receive, cell_product_thaw, rescue_medication_confirm
from orders.choices import PreparationStatus
from orders.filtersets import CourseFilterSet, DoseFilterSet, PreparationFilterSet
from orders.labelling import preparation_label
from orders.labels import label_pdf, label_zpl
from orders.models import (
    Dose,
    DoseDecision,
    Drug,
    ExposureReport,
    HoldRule,
    Preparation,
    Regimen,
    TherapyPlan,
    TreatmentCourse,
    TreatmentPlan,
)
from orders.selectors import (
    course_list,
    dose_gates_shown,
    dose_list,
    drug_list,
    exposure_report_list,
    hold_rule_list,
    preparation_list,
    regimen_list,
    therapy_plan_list,
    treatment_plan_list,
    verification_queue,
)
from orders.services.courses import course_reschedule, course_start, course_stop, therapy_plan_start
from orders.services.doses import dose_continue_cosigned, dose_override
from orders.services.identity import ScanOutcome, chain_of_identity_handoff, preparation_administer
from orders.services.preparations import (
    ComponentInput,
    preparation_end_administration,
    preparation_recalculate,
    preparation_record,
    preparation_release,
    preparation_start,
    preparation_verify,
    preparation_waste,
)
from orders.services.products import (
    exposure_report_record,
    fresh_product_collect,
    fresh_product_receive,
    preparer_exclusion_confirm,
    virus_thaw,
)
from orders.services.tolerance import tolerance_check_record

VIEW = "orders.view_preparation"


class DrugViewSet(viewsets.ReadOnlyModelViewSet[Drug]):
    queryset = drug_list()
    serializer_class = DrugSerializer
    required_permissions = action_permissions("orders.view_drug")


class RegimenViewSet(viewsets.ReadOnlyModelViewSet[Regimen]):
    queryset = regimen_list()
    serializer_class = RegimenSerializer
    required_permissions = action_permissions("orders.view_regimen")


class TherapyPlanViewSet(viewsets.ReadOnlyModelViewSet[TherapyPlan]):
    """Therapy plans offered: regimens given in phases (each phase's regimens together)."""

    queryset = therapy_plan_list()
    serializer_class = TherapyPlanSerializer
    required_permissions = action_permissions("orders.view_regimen")


class TreatmentPlanViewSet(ScopedViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[TreatmentPlan]):
    """Patients' therapy plans with their courses; POST starts a plan (its first phase's courses)."""

    selector = treatment_plan_list
    serializer_class = TreatmentPlanSerializer
    required_permissions = action_permissions("orders.view_treatmentcourse", create="orders.manage_course")

    @extend_schema(request=TreatmentPlanStartSerializer, responses={201: TreatmentPlanSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start a therapy plan for a patient: the first phase's courses, doses, orders and tests are scheduled;
        the next phase starts by itself when this one is finished."""
        data = self.validated(TreatmentPlanStartSerializer)
        plan = therapy_plan_start(user=acting_user(request), now=timezone.now(), **data)
        return Response(TreatmentPlanSerializer(self.get_queryset().get(pk=plan.pk)).data, status=201)


ALL_VERSIONS = OpenApiParameter("all_versions", OpenApiTypes.BOOL, description="`true`: every version too.")


@extend_schema_view(list=extend_schema(parameters=[ALL_VERSIONS]), retrieve=extend_schema(parameters=[ALL_VERSIONS]))
class HoldRuleViewSet(viewsets.ReadOnlyModelViewSet[HoldRule]):
    """Hold rules, current versions by default; `?all_versions=true` lists every version."""

    queryset = hold_rule_list(all_versions=True)

    def get_queryset(self) -> QuerySet[HoldRule]:
        return hold_rule_list(all_versions=self.request.query_params.get("all_versions") == "true")

    serializer_class = HoldRuleSerializer
    required_permissions = action_permissions("orders.view_regimen")


class CourseViewSet(ScopedViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[TreatmentCourse]):
    selector = course_list
    serializer_class = CourseSerializer
    filterset_class = CourseFilterSet
    required_permissions = action_permissions(
        "orders.view_treatmentcourse",
        create="orders.manage_course",
        stop="orders.manage_course",
        reschedule="orders.manage_course",
        handoff="orders.view_treatmentcourse",
        rescue_check="orders.prepare",
    )

    @extend_schema(request=CourseStartSerializer, responses={201: CourseSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Start a regimen for a patient: doses, preparation orders and monitoring tests are scheduled."""
        data = self.validated(CourseStartSerializer)
        course = course_start(user=acting_user(request), now=timezone.now(), **data)
        return Response(CourseSerializer(course).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReasonSerializer, responses={200: CourseSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        data = self.validated(ReasonSerializer)
        course = course_stop(course=self.get_object(), user=acting_user(request), now=timezone.now(), **data)
        return Response(CourseSerializer(course).data)

    @extend_schema(request=RescheduleSerializer, responses={200: DoseSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def reschedule(self, request: Request, pk: str | None = None) -> Response:
        """Move a dose and every later one; their monitoring tests move too (old ones cancelled, kept)."""
        data = self.validated(RescheduleSerializer)
        dose = get_object_or_404(self.get_object().doses, pk=data["dose"])
        moved = course_reschedule(dose=dose, planned_at=data["planned_at"], user=acting_user(request),
                                  now=timezone.now())  # fmt: skip
        return Response(DoseSerializer(moved, many=True, context={"now": timezone.now()}).data)

    @extend_schema(request=HandoffSerializer, responses={201: IdentityCheckSerializer, 409: IdentityCheckSerializer})
    @action(detail=True, methods=["post"])
    def handoff(self, request: Request, pk: str | None = None) -> Response:
        """CAR-T chain of identity: log a hand-off; a mismatching ID is recorded and answered 409."""
        data = self.validated(HandoffSerializer)
        check = chain_of_identity_handoff(course=self.get_object(), user=acting_user(request), now=timezone.now(),
                                          **data)  # fmt: skip
        code = status.HTTP_201_CREATED if check.matched else status.HTTP_409_CONFLICT
        return Response(IdentityCheckSerializer(check).data, status=code)

    @extend_schema(request=RescueCheckSerializer, responses={201: RescueMedicationCheckSerializer})
    @action(detail=True, methods=["post"], url_path="rescue-check")
    def rescue_check(self, request: Request, pk: str | None = None) -> Response:
        """Pharmacy confirms the rescue doses on hand (tocilizumab x 2 before a CAR-T infusion)."""
        data = self.validated(RescueCheckSerializer)
        check = rescue_medication_confirm(course=self.get_object(), user=acting_user(request), now=timezone.now(),
                                          **data)  # fmt: skip
        return Response(RescueMedicationCheckSerializer(check).data, status=status.HTTP_201_CREATED)


class DoseViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet[Dose]):
    """Doses with their gate verdict (cleared, blocked or overridden) and its reasons."""

    selector = dose_list
    serializer_class = DoseSerializer
    filterset_class = DoseFilterSet
    required_permissions = action_permissions(
        "orders.view_dose",
        override="orders.manage_course",
        continue_cosigned="orders.manage_course",
        tolerance_check="orders.administer",
    )

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def row_context(self, rows: list[Dose]) -> dict[str, Any]:
        return {"gates": dose_gates_shown(rows, now=timezone.now())}

    def _decided(self, decision: DoseDecision) -> Response:
        dose = self.get_queryset().get(pk=decision.dose_id)
        return Response(DoseSerializer(dose, context={"now": timezone.now()}).data)

    @extend_schema(request=ReasonSerializer, responses={200: DoseSerializer})
    @action(detail=True, methods=["post"])
    def override(self, request: Request, pk: str | None = None) -> Response:
        """An oncologist gives a withheld or pending dose, with a reason (never a permanent discontinuation)."""
        data = self.validated(ReasonSerializer)
        decision = dose_override(dose=self.get_object(), user=acting_user(request), now=timezone.now(), **data)
        return self._decided(decision)

    @extend_schema(request=ToleranceCheckInputSerializer, responses={201: ToleranceCheckSerializer})
    @action(detail=True, methods=["post"], url_path="tolerance-check")
    def tolerance_check(self, request: Request, pk: str | None = None) -> Response:
        """The bedside tolerance check before a dose that needs one (aldesleukin after TIL): the verdict comes from
        the findings; the dose is given only after a tolerated check within 2 h."""
        data = self.validated(ToleranceCheckInputSerializer)
        check = tolerance_check_record(dose=self.get_object(), user=acting_user(request), now=timezone.now(), **data)
        return Response(ToleranceCheckSerializer(check).data, status=201)

    @extend_schema(request=CosignSerializer, responses={200: DoseSerializer})
    @action(detail=True, methods=["post"], url_path="continue-cosigned")
    def continue_cosigned(self, request: Request, pk: str | None = None) -> Response:
        """Two oncologists document the decision to give a dose despite a permanent-discontinuation rule;
        the second co-signs with their password."""
        data = self.validated(CosignSerializer)
        decision = dose_continue_cosigned(
            dose=self.get_object(), user=acting_user(request), request=request, now=timezone.now(), **data
        )
        return self._decided(decision)


class PreparationViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet[Preparation]):
    selector = preparation_list
    serializer_class = PreparationSerializer
    filterset_class = PreparationFilterSet
    required_permissions = action_permissions(
        VIEW,
        verification_queue="orders.verify_preparation",
        recalculate="orders.prepare",
        start="orders.prepare",
        record="orders.prepare",
        receive="orders.prepare",
        thaw="orders.prepare",
        collect="orders.prepare",
        receive_fresh="orders.prepare",
        confirm_exclusion="orders.prepare",
        thaw_virus="orders.prepare",
        exposure=VIEW,
        verify="orders.verify_preparation",
        release="orders.prepare",
        waste="orders.prepare",
        administer="orders.administer",
        end_administration="orders.administer",
        label_pdf=VIEW,
        label_zpl=VIEW,
    )

    def _ok(self, prep: Preparation, code: int = status.HTTP_200_OK) -> Response:
        return Response(PreparationSerializer(self.get_queryset().get(pk=prep.pk)).data, status=code)

    def _apply(
        self, step: Callable[..., Any], serializer_class: type[Serializer[Any]] | None = None, **extra: Any
    ) -> Any:
        """One step on the URL's preparation, by the acting user, now, with the request's input if it takes any."""
        data = self.validated(serializer_class) if serializer_class else {}
        return step(preparation=self.get_object(), user=acting_user(self.request), now=timezone.now(), **extra, **data)

    @extend_schema(responses=PreparationSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="verification-queue", filter_backends=[])
    def verification_queue(self, request: Request) -> Response:
        """Preparations awaiting verification, prepared by others."""
        page = self.paginate_queryset(verification_queue(user=request.user))
        return self.get_paginated_response(PreparationSerializer(page, many=True).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def recalculate(self, request: Request, pk: str | None = None) -> Response:
        return self._ok(self._apply(preparation_recalculate))

    @extend_schema(request=None, responses={200: PreparationSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        """Start preparing; a blocked dose answers 409 with the gate's reasons."""
        return self._ok(self._apply(preparation_start))

    @extend_schema(request=RecordSerializer)
    @action(detail=True, methods=["post"])
    def record(self, request: Request, pk: str | None = None) -> Response:
        """Record the vials and diluent; the beyond-use clocks run from `punctured_at` (default: the start)."""
        data = self.validated(RecordSerializer)
        components = [ComponentInput(**c) for c in data.pop("components")]
        return self._ok(self._apply(preparation_record, components=components, **data))

    def _scanned(self, outcome: ScanOutcome) -> Response:
        if not outcome.matched:
            return Response(IdentityCheckSerializer(outcome.check).data, status=status.HTTP_409_CONFLICT)
        return self._ok(outcome.preparation)

    @extend_schema(request=CellReceiptSerializer, responses={200: PreparationSerializer, 409: IdentityCheckSerializer})
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str | None = None) -> Response:
        """Cell products: receipt hand-off with the certificate of analysis (cells in the order's range);
        a mismatching chain-of-identity ID is recorded and answered 409."""
        return self._scanned(self._apply(cell_product_receive, CellReceiptSerializer))

    @extend_schema(request=CellThawSerializer, responses={200: PreparationSerializer, 409: IdentityCheckSerializer})
    @action(detail=True, methods=["post"])
    def thaw(self, request: Request, pk: str | None = None) -> Response:
        """Cell products: the thaw hand-off (the "record" step); the infusion must end within the drug's
        thaw-to-infusion limit. A mismatching chain-of-identity ID is recorded and answered 409."""
        return self._scanned(self._apply(cell_product_thaw, CellThawSerializer))

    @extend_schema(request=FreshCollectSerializer, responses={200: PreparationSerializer})
    @action(detail=True, methods=["post"])
    def collect(self, request: Request, pk: str | None = None) -> Response:
        """Fresh cell products (sipuleucel-T): this dose's leukapheresis and its bag's own chain-of-identity ID."""
        return self._ok(self._apply(fresh_product_collect, FreshCollectSerializer))

    @extend_schema(request=FreshReceiptSerializer, responses={200: PreparationSerializer, 409: IdentityCheckSerializer})
    @action(detail=True, methods=["post"], url_path="receive-fresh")
    def receive_fresh(self, request: Request, pk: str | None = None) -> Response:
        """Fresh cell products: receipt of the bag (its own ID, the certificate's cells, the product's expiry time);
        it then awaits verification. A mismatching ID is recorded and answered 409."""
        return self._scanned(self._apply(fresh_product_receive, FreshReceiptSerializer))

    @extend_schema(request=ExclusionSerializer, responses={200: PreparationSerializer})
    @action(detail=True, methods=["post"], url_path="confirm-exclusion")
    def confirm_exclusion(self, request: Request, pk: str | None = None) -> Response:
        """Before starting a product with preparer exclusions (T-VEC): the preparer confirms they are not pregnant
        and not immunocompromised. Without it the start is refused."""
        return self._ok(self._apply(preparer_exclusion_confirm, ExclusionSerializer))

    @extend_schema(request=VirusThawSerializer, responses={200: PreparationSerializer})
    @action(detail=True, methods=["post"], url_path="thaw-virus")
    def thaw_virus(self, request: Request, pk: str | None = None) -> Response:
        """Oncolytic virus: the vial thawed and the visit's volume planned from the lesions (largest first, at most
        the regimen's mL per visit); the preparation then awaits a volumetric verification."""
        return self._ok(self._apply(virus_thaw, VirusThawSerializer))

    @extend_schema(request=ExposureInputSerializer, responses={201: ExposureReportSerializer})
    @action(detail=True, methods=["post"])
    def exposure(self, request: Request, pk: str | None = None) -> Response:
        """Report an accidental exposure to this preparation's product (who, when, what, action taken)."""
        prep = self.get_object()
        data = self.validated(ExposureInputSerializer)
        report = exposure_report_record(
            drug=prep.dose.course.regimen.drug, preparation=prep, user=acting_user(request), now=timezone.now(), **data
        )
        return Response(ExposureReportSerializer(report).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=VerifySerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None) -> Response:
        """Independent verification (never the preparer), signed by re-entering the password: weighed or
        measured, or for a cell product the bag's chain-of-identity label, integrity and time since thaw."""
        return self._ok(self._apply(preparation_verify, VerifySerializer, request=request))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        return self._ok(self._apply(preparation_release))

    @extend_schema(request=ReasonSerializer)
    @action(detail=True, methods=["post"])
    def waste(self, request: Request, pk: str | None = None) -> Response:
        return self._ok(self._apply(preparation_waste, ReasonSerializer))

    @extend_schema(request=AdministerSerializer, responses={200: PreparationSerializer, 409: IdentityCheckSerializer})
    @action(detail=True, methods=["post"])
    def administer(self, request: Request, pk: str | None = None) -> Response:
        """Bedside check of wristband and label (a cell product also its chain-of-identity label), both
        beyond-use clocks, premedication, rescue doses on hand and the dose gate: all hold and the administration
        starts; any failure is a hard stop, recorded, answered 409."""
        return self._scanned(self._apply(preparation_administer, AdministerSerializer))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="end-administration")
    def end_administration(self, request: Request, pk: str | None = None) -> Response:
        return self._ok(self._apply(preparation_end_administration))

    def _label(self, render: Any, content_type: str, suffix: str) -> HttpResponse:
        prep = self.get_object()
        if prep.status not in (PreparationStatus.AWAITING_VERIFICATION, PreparationStatus.RELEASED,
                               PreparationStatus.ADMINISTERED) or prep.verified_at is None:  # fmt: skip
            raise Conflict("A label is printed once the preparation is verified.")
        body = render(preparation_label(prep), tz=timezone.get_current_timezone())
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="{prep.code}.{suffix}"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, 409: None})
    @action(detail=True, methods=["get"], url_path="label/pdf", content_negotiation_class=FileNegotiation)
    def label_pdf(self, request: Request, pk: str | None = None) -> HttpResponse:
        return self._label(label_pdf, "application/pdf", "pdf")

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR, 409: None})
    @action(detail=True, methods=["get"], url_path="label/zpl", content_negotiation_class=FileNegotiation)
    def label_zpl(self, request: Request, pk: str | None = None) -> HttpResponse:
        return self._label(label_zpl, "text/plain; charset=utf-8", "zpl")


class ExposureReportViewSet(viewsets.ReadOnlyModelViewSet[ExposureReport]):
    """Accidental exposures to hazardous or genetically modified products, newest first, for the pharmacist."""

    queryset = exposure_report_list()
    serializer_class = ExposureReportSerializer
    required_permissions = action_permissions("orders.prepare")

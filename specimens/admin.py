from django.contrib import admin

from core.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from specimens.models import Container, CustodyEvent, Specimen, TestSpecimenRequirement


@admin.register(Container)
class ContainerAdmin(NoDeleteAdmin):
    list_display = ["code", "name", "cap_colour", "additive", "specimen_type", "draw_order"]


@admin.register(TestSpecimenRequirement)
class RequirementAdmin(NoDeleteAdmin):
    list_display = ["lab_test", "container", "min_volume_ml", "stability_room_temp", "stability_refrigerated"]


@admin.register(Specimen, CustodyEvent)
class SpecimenRecordAdmin(ReadOnlyAdmin):
    """Specimens and their custody trail change only through their services."""

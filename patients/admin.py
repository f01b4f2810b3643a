from django.contrib import admin

from core.admin_base import NoDeleteAdmin, ReadOnlyAdmin
from patients.models import CareTeam, CareTeamMembership, Patient, PatientAlias, WardCareTeam


class MembershipInline(admin.TabularInline[CareTeamMembership, CareTeam]):
    model = CareTeamMembership
    extra = 1


@admin.register(CareTeam)
class CareTeamAdmin(NoDeleteAdmin):
    list_display = ["name", "ward"]
    inlines = [MembershipInline]


@admin.register(Patient)
class PatientAdmin(NoDeleteAdmin):
    list_display = ["mrn", "family_name", "given_name", "birth_date", "care_team", "ward", "merged_into"]
    list_filter = ["care_team"]
    readonly_fields = ["merged_into", "merged_at"]  # set by the ADT merge (A40) only
    search_fields = ["mrn", "family_name"]


@admin.register(WardCareTeam)
class WardCareTeamAdmin(NoDeleteAdmin):
    """The ward → care team mapping the ADT feed admits and transfers by (docs/interfaces.md)."""

    list_display = ["ward", "care_team"]
    list_select_related = ["care_team"]
    search_fields = ["ward"]


@admin.register(PatientAlias)
class PatientAliasAdmin(ReadOnlyAdmin):
    """MRNs of merged records (A40): written by the feed only."""

    list_display = ["mrn", "authority", "patient", "merged_record", "created_at"]
    list_select_related = ["patient", "merged_record"]
    search_fields = ["mrn"]

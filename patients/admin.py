from django.contrib import admin

from core.admin_base import NoDeleteAdmin
from patients.models import CareTeam, CareTeamMembership, Patient


class MembershipInline(admin.TabularInline[CareTeamMembership, CareTeam]):
    model = CareTeamMembership
    extra = 1


@admin.register(CareTeam)
class CareTeamAdmin(NoDeleteAdmin):
    list_display = ["name", "ward"]
    inlines = [MembershipInline]


@admin.register(Patient)
class PatientAdmin(NoDeleteAdmin):
    list_display = ["mrn", "family_name", "given_name", "birth_date", "care_team"]
    list_filter = ["care_team"]
    search_fields = ["mrn", "family_name"]

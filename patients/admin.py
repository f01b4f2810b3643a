from django.contrib import admin

from patients.models import CareTeam, CareTeamMembership, Patient


class MembershipInline(admin.TabularInline[CareTeamMembership, CareTeam]):
    model = CareTeamMembership
    extra = 1


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin[CareTeam]):
    list_display = ["name", "ward"]
    inlines = [MembershipInline]

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin[Patient]):
    list_display = ["mrn", "family_name", "given_name", "birth_date", "care_team"]
    list_filter = ["care_team"]
    search_fields = ["mrn", "family_name"]

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False

from rest_framework import serializers

from patients.models import CareTeam, CareTeamMembership, Patient


class PatientSerializer(serializers.ModelSerializer[Patient]):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "family_name", "given_name", "birth_date", "sex", "weight_kg", "height_cm", "care_team"]
        read_only_fields = fields


class CareTeamMemberSerializer(serializers.ModelSerializer[CareTeamMembership]):
    username = serializers.CharField(source="user.username", read_only=True)
    full_name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = CareTeamMembership
        fields = ["user", "username", "full_name", "role"]
        read_only_fields = fields


class CareTeamSerializer(serializers.ModelSerializer[CareTeam]):
    members = CareTeamMemberSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = CareTeam
        fields = ["id", "name", "ward", "members"]
        read_only_fields = fields

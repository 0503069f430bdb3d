from rest_framework import serializers


class WhoamiSerializer(serializers.Serializer):
    organisation_id = serializers.CharField()
    scope = serializers.ChoiceField(choices=["READ", "WRITE"])
    organisation_name = serializers.CharField()
    organisation_slug = serializers.CharField()
    is_sandbox = serializers.BooleanField()
    live_organisation_id = serializers.CharField(allow_null=True, help_text="For a sandbox key: its live twin's id.")
    key_id = serializers.CharField()
    key_name = serializers.CharField()
    key_prefix = serializers.CharField(help_text="The first characters after `pc_`, as listed on /settings/api.")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    database = serializers.ChoiceField(choices=["ok", "unavailable"])
    redis = serializers.ChoiceField(choices=["ok", "unavailable"])

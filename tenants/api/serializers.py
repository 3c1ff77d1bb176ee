from __future__ import annotations

from rest_framework import serializers

from tenants.models import PERMISSIONS, ApiToken


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not silently ignored."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as invalid:
            errors.update(invalid.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_in = serializers.CharField(required=False, allow_blank=False, max_length=10,
                                       help_text="30d, 12h, 2w or 1y; default 90d")
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=PERMISSIONS), required=False,
                                        allow_empty=False)
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                       help_text="Issue for another user of your tenant (needs tokens:manage).")


class TokenSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    user = serializers.CharField(source="user.username", read_only=True)
    permissions = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ApiToken
        fields = ["token_id", "name", "prefix", "user", "created_at", "expires_at", "last_used", "permissions",
                  "status"]
        read_only_fields = fields


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. Shown only in this response.")
    message = serializers.CharField(read_only=True)

    class Meta(TokenSerializer.Meta):
        fields = ["token_id", "token", "message"] + [f for f in TokenSerializer.Meta.fields if f != "token_id"]
        read_only_fields = fields


class TokenRevokedSerializer(serializers.Serializer):
    message = serializers.CharField()
    token_id = serializers.CharField()
    revoked_at = serializers.DateTimeField()


class VerifySerializer(serializers.Serializer):
    status = serializers.CharField()
    user = serializers.CharField()
    tenant = serializers.CharField()
    token_id = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)

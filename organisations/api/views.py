from __future__ import annotations

from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from organisations.api.serializers import HealthSerializer, WhoamiSerializer
from together.api.views import ApiView
from together.redis import client


class WhoamiView(ApiView):
    required_scope = "READ"
    schema_tags = ["meta"]

    @extend_schema(
        operation_id="whoami",
        summary="Identify the key",
        description="The organisation and scope of the API key used. Any key, READ or WRITE, live or sandbox.",
        responses={200: WhoamiSerializer},
    )
    def get(self, request):
        key, org = request.api_key, request.organisation
        return Response({
            "organisation_id": org.id,
            "scope": key.scope,
            "organisation_name": org.name,
            "organisation_slug": org.slug,
            "is_sandbox": org.is_sandbox,
            "live_organisation_id": org.live_organisation_id,
            "key_id": key.id,
            "key_name": key.name,
            "key_prefix": key.prefix,
        })


class HealthView(ApiView):
    required_scope = None
    rate_limited = False
    schema_tags = ["meta"]

    @extend_schema(
        operation_id="health",
        summary="Service health",
        description="Database and Redis status. No key needed. 200 when both answer, 503 otherwise.",
        auth=[],
        responses={200: HealthSerializer, 503: OpenApiResponse(HealthSerializer, description="A dependency is down.")},
    )
    def get(self, request):
        database = redis_status = "ok"
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:  # noqa: BLE001
            database = "unavailable"
        try:
            client().ping()
        except Exception:  # noqa: BLE001
            redis_status = "unavailable"
        healthy = database == "ok" and redis_status == "ok"
        return Response(
            {"status": "ok" if healthy else "degraded", "database": database, "redis": redis_status},
            status=200 if healthy else 503,
        )

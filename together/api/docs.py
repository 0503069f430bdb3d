"""Reusable OpenAPI fragments."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

LIST_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 100, default 10.", required=False),
    OpenApiParameter("starting_after", OpenApiTypes.STR, description="An id from the previous page: the page after it.", required=False),
    OpenApiParameter("ending_before", OpenApiTypes.STR, description="An id: the page before it.", required=False),
]


def expand_parameter(*names: str) -> OpenApiParameter:
    return OpenApiParameter(
        "expand[]", OpenApiTypes.STR, many=True, enum=list(names), required=False,
        description="Embed the related object under the name without `_id`.", explode=True,
    )


def id_parameter(name: str = "id", what: str = "object") -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=f"The {what}'s id.")

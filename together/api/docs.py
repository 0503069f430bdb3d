"""Reusable OpenAPI fragments."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

LIST_PARAMETERS = [
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                     description="Page size: 1 to 100, default 10. Anything else is 400 `validation_failed`.", required=False),
    OpenApiParameter("starting_after", {"type": "string", "minLength": 1, "maxLength": 64},
                     description="The id of the last object of the previous page: the page after it. Not with `ending_before`.", required=False),
    OpenApiParameter("ending_before", {"type": "string", "minLength": 1, "maxLength": 64},
                     description="The id of the first object of the current page: the page before it. Not with `starting_after`.", required=False),
]


def expand_parameter(*names: str) -> OpenApiParameter:
    return OpenApiParameter(
        "expand[]", OpenApiTypes.STR, many=True, enum=list(names), required=False,
        description="Embed the related object under the name without `_id`.", explode=True,
    )

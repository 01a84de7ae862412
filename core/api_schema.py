"""The error envelope as the OpenAPI schema documents it: one `Error` component for every app.

core.api_errors renders every 4xx/5xx as {"error": "<code>", "detail": ...} plus the error's own
details; an API whose error carries more fields (a payout conflict's current status) documents
them in a subclass of ErrorSerializer, with its own component name.
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


# The `Error` component, named after the class: a Meta.ref_name would be inherited by the
# subclasses and collide. No docstring either: it would become every subclass's description.
class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="The error code, e.g. not_found or conflict")
    detail = serializers.JSONField(help_text="A message, or the fields and their problems")


def error_response(description: str, serializer: type[ErrorSerializer] = ErrorSerializer) -> OpenApiResponse:
    return OpenApiResponse(serializer, description=description)


def error_responses(descriptions: dict[int, str]) -> dict[int, OpenApiResponse]:
    """{status: description} -> the `responses` entries of those statuses, each with the envelope."""
    return {status: error_response(description) for status, description in descriptions.items()}

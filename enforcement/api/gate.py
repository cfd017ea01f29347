"""The gate, over HTTP, for the ingest edge: ``POST /api/v1/gate/check/`` (scope ``gate:check``).

The decision itself is ``accounts.gate`` (it reads only the edge store); this is its API entry point,
with the service-token authentication and error shape of the rest of the API.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import edge, gate
from enforcement.api.permissions import ScopePermission
from enforcement.api.serializers import ErrorSerializer
from lib.prom import GATE as GATE_DECISIONS


class GateCheckSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=gate.MAX_TOKEN_LENGTH, trim_whitespace=False,
                                help_text="The full API key token the request carries.")
    ip = serializers.IPAddressField(help_text="The client address the request comes from (IPv4 or IPv6).")
    # No length limit or format check: the header is the client's to send, and an odd one must not cost the
    # request its answer. Anything that is not a web page's origin is ignored.
    origin = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, trim_whitespace=False,
        help_text="The Origin header the request carried, if any. A secret or restricted key presented from a web "
        "page (http(s)://...) is reported as exposed, and with EDGE_BROWSER_SECRET=refuse refused there "
        "(wrong_key_type).",
    )


class GateDecisionSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.ChoiceField(choices=gate.REASONS)
    limit = serializers.IntegerField(help_text="The binding limit per minute (the key's or the address's).")
    remaining = serializers.IntegerField(help_text="Requests left under that limit.")
    retry_after = serializers.IntegerField(help_text="Seconds until a rate-limited request would pass.")


class EdgeStoreUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "edge_unavailable"
    default_detail = "The edge store cannot be reached; no decision was made."


class GateCheckView(APIView):
    permission_classes = [ScopePermission]
    required_scopes = {"POST": "gate:check"}
    # The gate is itself the rate limiter of the ingest path; the API's per-caller throttle would cap
    # every customer's traffic at one service token's rate.
    throttle_classes: list = []

    @extend_schema(
        operation_id="gate_check",
        summary="May this key send, from this address?",
        description="Reads only the edge store (never the database). A refusal is a 200 with `allowed: false`; "
        "a rate-limited answer also carries a `Retry-After` header. Refusals are counted per key, and secret or "
        "restricted keys seen with a web `origin` remembered, for the console to report.",
        request=GateCheckSerializer,
        responses={
            200: GateDecisionSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The key or the address is missing or malformed."),
            401: OpenApiResponse(ErrorSerializer, description="No or a bad service token."),
            403: OpenApiResponse(ErrorSerializer, description="The token lacks the gate:check scope."),
            503: OpenApiResponse(ErrorSerializer, description="The edge store cannot be reached, or lost its data "
                                 "and is being rebuilt."),
        },
        tags=["gate"],
    )
    def post(self, request):
        serializer = GateCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            data = serializer.validated_data
            decision = gate.check(data["key"], data["ip"], origin=data.get("origin"))
        except edge.EdgeNotBuilt as exc:
            GATE_DECISIONS["store_unavailable"].inc()
            raise EdgeStoreUnavailable(edge.NOT_BUILT) from exc
        except edge.EdgeUnavailable as exc:
            GATE_DECISIONS["store_unavailable"].inc()
            raise EdgeStoreUnavailable() from exc
        GATE_DECISIONS[decision.reason].inc()  # in-process, no round trip (lib.prom)
        headers = {"Retry-After": str(decision.retry_after)} if decision.reason == "rate_limited" else None
        return Response(GateDecisionSerializer(decision).data, headers=headers)

"""Partner webhooks. Each proves its origin by a signature, not a service token."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from enforcement.api.serializers import ErrorSerializer
from enforcement.integrations import github


class SecretScanningMatchSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The string GitHub found.")
    type = serializers.CharField(help_text="The pattern that matched, as registered with GitHub.")
    url = serializers.URLField(help_text="Where it was found.")
    source = serializers.CharField(help_text="What kind of place: content, commit, pull_request, gist ...")


class SecretScanningLabelSerializer(serializers.Serializer):
    token_hash = serializers.CharField(help_text="SHA-256 of the token, hexadecimal.")
    token_type = serializers.CharField()
    label = serializers.ChoiceField(choices=[github.TRUE_POSITIVE, github.FALSE_POSITIVE])


class SignatureInvalid(APIException):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "invalid_signature"
    default_detail = "The delivery's signature does not verify."


class GitHubSecretScanningView(APIView):
    authentication_classes: list = []  # the signature is the authentication
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="github_secret_scanning",
        summary="GitHub secret scanning partner alerts",
        description="Verifies GitHub's ECDSA signature over the raw body, revokes leaked secret and restricted "
        "keys, records key-exposure violations and emails the owners. Answers GitHub's feedback format.",
        auth=[],
        parameters=[
            OpenApiParameter("Github-Public-Key-Identifier", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("Github-Public-Key-Signature", str, OpenApiParameter.HEADER, required=True,
                             description="Base64 DER ECDSA P-256 SHA-256 signature of the raw body."),
        ],
        request=SecretScanningMatchSerializer(many=True),
        responses={
            200: SecretScanningLabelSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="The body is not a JSON array of matches (or nests "
                                 "deeper than 32, or holds a number or a character that cannot be stored)."),
            401: OpenApiResponse(ErrorSerializer, description="Unknown signing key, or a bad signature."),
            413: OpenApiResponse(ErrorSerializer, description="The body is over API_MAX_BODY_BYTES (refused before "
                                 "the signature is checked)."),
            429: OpenApiResponse(ErrorSerializer, description="Too many requests from this address."),
        },
        tags=["integrations"],
    )
    def post(self, request):
        # The exact bytes GitHub signed, read before anything parses them (no more than API_MAX_BODY_BYTES: the
        # size guard refuses a longer body first). Parsed after the signature verifies, by lib.safe_json.
        body = request.body
        try:
            github.verify_signature(
                body,
                key_identifier=request.headers.get("Github-Public-Key-Identifier"),
                signature=request.headers.get("Github-Public-Key-Signature"),
            )
        except github.SignatureInvalid as exc:
            raise SignatureInvalid(str(exc)) from exc
        labels = github.process_delivery(github.parse_delivery(body))
        return Response(SecretScanningLabelSerializer(labels, many=True).data)

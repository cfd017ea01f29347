"""A software WebAuthn authenticator for tests without a browser: it answers the console's passkey endpoints
as a platform authenticator would (an ES256 key, "none" attestation), so the server's real verification
(py_webauthn) runs on what it sends. The browser tests use Chromium's own virtual authenticator instead."""

import hashlib
import json
import os
import struct
from base64 import urlsafe_b64encode

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

BEGIN_REGISTRATION = "/admin/second-factor/passkey/registration/begin/"
COMPLETE_REGISTRATION = "/admin/second-factor/passkey/registration/complete/"
BEGIN_AUTHENTICATION = "/admin/second-factor/passkey/authentication/begin/"
COMPLETE_AUTHENTICATION = "/admin/second-factor/passkey/authentication/complete/"

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self, rp_id: str = "testserver", origin: str = "http://testserver"):
        self.rp_id, self.origin = rp_id, origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin,
                           "crossOrigin": False}).encode()

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def attestation(self, options: dict) -> dict:
        """What ``navigator.credentials.create`` returns, as JSON, for these creation options."""
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([FLAG_UP | FLAG_UV | FLAG_AT])
                     + struct.pack(">I", self.sign_count) + bytes(16)
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key())
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                "authenticatorAttachment": "platform", "clientExtensionResults": {"credProps": {"rk": True}},
                "response": {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"])),
                             "attestationObject": b64url(attestation_object), "transports": ["internal"]}}

    def assertion(self, options: dict, *, tamper: bool = False) -> dict:
        """What ``navigator.credentials.get`` returns; ``tamper`` spoils the signature."""
        self.sign_count += 1
        auth_data = (hashlib.sha256(self.rp_id.encode()).digest() + bytes([FLAG_UP | FLAG_UV])
                     + struct.pack(">I", self.sign_count))
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        if tamper:
            client_data = client_data.replace(b'"webauthn.get"', b'"webauthn.get" ')
        return {"id": b64url(self.credential_id), "rawId": b64url(self.credential_id), "type": "public-key",
                "authenticatorAttachment": "platform", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                             "signature": b64url(signature)}}

    # The ceremonies through a Django test client signed in with the password.

    def register(self, client):
        begin = client.post(BEGIN_REGISTRATION)
        if begin.status_code != 200:
            return begin
        return client.post(COMPLETE_REGISTRATION, self.attestation(begin.json()), content_type="application/json")

    def sign_in(self, client, *, tamper: bool = False, next_path: str = ""):
        begin = client.post(BEGIN_AUTHENTICATION)
        if begin.status_code != 200:
            return begin
        url = COMPLETE_AUTHENTICATION + (f"?next={next_path}" if next_path else "")
        return client.post(url, self.assertion(begin.json(), tamper=tamper), content_type="application/json")

"""The request-size guard behind real servers: gunicorn (WSGI) and Django's ASGI handler.

A chunked body has no Content-Length, so only reading it tells its size: over ``API_MAX_BODY_BYTES``
it is a 413, within it the body is read as any other (a GitHub delivery verifies and parses). A
declared length over the limit is answered without reading a byte of the body. No database is
touched on these paths, so the server needs none.
"""

import asyncio
import http.client
import json
import os
import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from config.asgi import application as asgi_application
from tests.edge.test_github_secret_scanning import KEY_ID, public_pem, sign
from tests.processes import start_gunicorn, stop

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
LIMIT = 64 * 1024
GITHUB = "/api/v1/integrations/github/secret-scanning/"


@pytest.fixture(scope="module")
def github_signer(tmp_path_factory):
    private_key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("github") / "keys.json"
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": KEY_ID, "key": public_pem(private_key), "is_current": True}
    ]}))
    return private_key, path


@pytest.fixture(scope="module")
def gunicorn(github_signer, tmp_path_factory):
    """gunicorn serving the console on a free port, with a 64 KiB body limit."""
    env = {**os.environ, "DJANGO_PROFILE": "test", "VAR_DIR": str(tmp_path_factory.mktemp("var")),
           "API_MAX_BODY_BYTES": str(LIMIT), "GITHUB_SECRET_SCANNING_KEYS": str(github_signer[1])}
    process, port, _ = start_gunicorn(env, timeout=30)
    yield port
    stop(process)


def chunks(body: bytes, size: int = 8192):
    for start in range(0, len(body), size):
        yield body[start:start + size]


def send_chunked(port: int, path: str, body: bytes, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, body=chunks(body), encode_chunked=True,
                       headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def test_gunicorn_refuses_a_chunked_body_over_the_limit(gunicorn):
    status, content_type, body = send_chunked(gunicorn, "/api/v1/violations/", b"[" + b" " * (LIMIT + 100) + b"]")
    assert status == 413 and content_type == "application/json"
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    status, content_type, body = send_chunked(gunicorn, "/admin/login/", b"x" * (LIMIT + 1))
    assert status == 413 and content_type.startswith("text/html") and b"Payload Too Large" in body


def test_gunicorn_reads_a_chunked_body_within_the_limit(gunicorn, github_signer):
    """A signed chunked delivery: verified over the exact bytes and parsed (an empty list changes nothing)."""
    private_key, _ = github_signer
    body = b"[" + b" " * (LIMIT - 2) + b"]"
    headers = {"Github-Public-Key-Identifier": KEY_ID, "Github-Public-Key-Signature": sign(private_key, body)}
    status, _, answer = send_chunked(gunicorn, GITHUB, body, headers)
    assert (status, json.loads(answer)) == (200, [])
    deep = b"[" * 40_000 + b"]" * 40_000
    headers["Github-Public-Key-Signature"] = sign(private_key, deep)
    status, _, answer = send_chunked(gunicorn, GITHUB, deep, headers)
    assert status == 413  # over the limit before it is too deep
    deep = b"[" * 30_000 + b"]" * 30_000
    headers["Github-Public-Key-Signature"] = sign(private_key, deep)
    status, _, answer = send_chunked(gunicorn, GITHUB, deep, headers)
    assert status == 400 and json.loads(answer)["error"]["code"] == "too_deep"


def test_gunicorn_answers_a_declared_length_over_the_limit_without_reading_the_body(gunicorn):
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=5) as client:
        client.sendall(
            f"POST {GITHUB} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * LIMIT}\r\n\r\n".encode()
        )  # and not one byte of the body: a server that read it would wait, and time out
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"payload_too_large"' in answer


def asgi_post(path: str, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One request through Django's ASGI handler, the body in several messages and no content-length."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in body_chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected: Django listens for a disconnect meanwhile

    async def send(message):
        sent.append(message)

    asyncio.run(asgi_application(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_asgi_measures_a_body_without_a_length(github_signer, settings):
    settings.API_MAX_BODY_BYTES = LIMIT
    settings.GITHUB_SECRET_SCANNING_KEYS = str(github_signer[1])
    status, answer = asgi_post("/api/v1/violations/", [b" " * 8192] * 9, [])
    assert status == 413 and json.loads(answer)["error"]["code"] == "payload_too_large"
    body = b"[" + b" " * 30_000 + b"]"
    signature = sign(github_signer[0], body).encode()
    headers = [(b"github-public-key-identifier", KEY_ID.encode()), (b"github-public-key-signature", signature)]
    status, answer = asgi_post(GITHUB, list(chunks(body)), headers)
    assert (status, json.loads(answer)) == (200, [])

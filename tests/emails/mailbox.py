"""A real SMTP server on loopback (aiosmtpd, pure Python) and helpers for reading what it received."""

import email
import email.policy
import re
import socket
from dataclasses import dataclass, field
from html import unescape

from aiosmtpd.controller import Controller

from enforcement.redaction import luhn_valid


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: email.message.EmailMessage = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_content()
        raise AssertionError(f"no {content_type} part")


class Mailbox:
    """An aiosmtpd handler keeping every message; refuses the recipients in ``refuse`` with a 550.
    ``go_down()`` and ``come_back()`` stop and restart the server on the same port (an outage)."""

    def __init__(self):
        self.messages: list[Received] = []
        self.refuse: set[str] = set()
        self.port: int | None = None
        self.controller: Controller | None = None

    def go_down(self) -> None:
        self.controller.stop()

    def come_back(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, server_hostname="smtp.test",
                                     ready_timeout=10)
        self.controller.start()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = bytes(envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, message))
        return "250 Message accepted for delivery"


class LoopbackController(Controller):
    """Listens on a socket bound to 127.0.0.1 port 0 before the server starts, so no port can be taken."""

    def __init__(self, handler):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        super().__init__(handler, hostname="127.0.0.1", port=self._listener.getsockname()[1],
                         server_hostname="smtp.test", ready_timeout=10)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._listener, ssl=self.ssl_context)


_DIGIT_RUN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_FULL_KEY_TOKEN = re.compile(r"\b(?:pk|sk|rk)_live_[A-Za-z0-9]{13,}")


def assert_no_secrets(text: str, *secrets: str) -> None:
    """None of the given strings appears, nor any card number (Luhn-valid run of digits) or full key token."""
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into an email"
    for run in _DIGIT_RUN.findall(text):
        digits = re.sub(r"\D", "", run)
        assert not (13 <= len(digits) <= 19 and luhn_valid(digits)), f"card number {run!r} in an email"
    assert not _FULL_KEY_TOKEN.search(text), "a full API key token in an email"


def visible_text(html: str) -> str:
    """What a reader sees in an HTML email: tags dropped, entities decoded, whitespace collapsed."""
    body = re.sub(r"(?s)<head>.*?</head>", " ", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def plain(text: str) -> str:
    return " ".join(text.split())

"""The task queue's depth, as the broker counts it: for ``/metrics``, never allowed to hang it."""

import logging

from kombu import Connection
from kombu.exceptions import ChannelError

log = logging.getLogger(__name__)


def queue_depth(url: str, queue: str, *, transport_options: dict | None = None, timeout: float = 1.0) -> int:
    """Messages waiting in ``queue`` (a passive declare: nothing is created). A queue the broker does not know
    holds nothing (Redis drops an empty list): 0. A broker that cannot be reached within ``timeout`` seconds:
    -1, and a log line. Works on redis://, amqp:// and the embedded filesystem:// transport."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0,
               **(transport_options or {})}
    try:
        with Connection(url, connect_timeout=timeout, transport_options=options) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0,
                                        timeout=timeout)
            try:  # the connection's own channel, closed with it
                return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError as exc:
                if "NOT_FOUND" in str(exc) or getattr(exc, "code", None) == 404:
                    return 0
                raise
    except Exception as exc:  # noqa: BLE001 - any broker failure is a -1 on the gauge, not a failed scrape
        log.warning("task queue depth: the broker at %s did not answer (%s)", _safe(url), exc)
        return -1


def _safe(url: str) -> str:
    """The broker's URL without its password, for the log."""
    try:
        return Connection(url).as_uri()
    except Exception:  # noqa: BLE001
        return url.split("@")[-1]

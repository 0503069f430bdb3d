"""A real HTTP receiver for the webhook tests: a threaded http.server on 127.0.0.1
that records every request, answers as the test scripts it, and verifies each
signature with the `standardwebhooks` package (not our code), keyed as the
reference's samples do: base64 of the secret's UTF-8 bytes."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def verifier(secret: str) -> Webhook:
    return Webhook(base64.b64encode(secret.encode("utf-8")).decode())


def verify(secret: str, body: bytes, headers: dict) -> dict:
    """The parsed body, or WebhookVerificationError."""
    return verifier(secret).verify(body, headers)


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b'{"ok":true}'


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    status: int
    valid: bool | None  # None: no secret registered for the path
    at: float
    complete: bool = True  # False: fewer body bytes than Content-Length arrived
    client_port: int = 0  # the sender's port: one per connection

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self, tls_context=None):
        self.requests: list[Received] = []
        self.secrets: dict[str, list[str]] = {}
        self.script = None  # callable(path, n_for_path) -> Reply
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Answer headers and body without waiting for the client's delayed ACK (Nagle).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path
                with receiver._lock:
                    n = receiver._counts.get(path, 0) + 1
                    receiver._counts[path] = n
                    secrets = list(receiver.secrets.get(path, []))
                reply = receiver.script(path, n) if receiver.script else Reply()
                complete = len(body) == length
                if not complete:  # the sender died mid-request: a receiver answers 400 to a short body
                    reply = Reply(400, body=b"incomplete body")
                valid = None
                if secrets:
                    valid = True
                    for secret in secrets:
                        try:
                            verify(secret, body, headers)
                        except WebhookVerificationError:
                            valid = False
                with receiver._lock:
                    receiver.requests.append(
                        Received(path, headers, body, reply.status, valid, time.time(), complete, self.client_address[1]))
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                import sys

                if not isinstance(sys.exc_info()[1], ConnectionError):  # a sender killed mid-request is expected
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls_context is not None else "http"
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def on(self, path: str, secret: str) -> None:
        with self._lock:
            self.secrets[path] = [secret]

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

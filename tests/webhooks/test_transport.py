"""The HTTP layer against real sockets: TLS verification, the pinned address,
keep-alive reuse, and what a receiver's answer may do to a connection."""
from __future__ import annotations

import ssl
import subprocess

import pytest

from donations import services as donations
from tests.webhooks.conftest import pump
from tests.webhooks.receiver import Receiver, Reply
from webhooks import addresses, transport
from webhooks.addresses import Target, UnsafeUrl
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for `localhost`, made by the openssl command line."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver = Receiver(tls_context=context).start()
    yield receiver
    receiver.stop()
    transport.pools_clear()


@pytest.mark.django_db
def test_certificates_are_verified(tls_receiver, org, actor):
    created = webhook_endpoint_create(organisation=org, actor=actor, url=tls_receiver.url(host="localhost"))
    tls_receiver.on("/hook", created.secret)
    donations.donor_create(organisation=org, actor=actor, email="tls@example.com")
    pump()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "PENDING" and delivery.last_error.startswith("TLS error")
    assert "certificate verify failed" in delivery.last_error
    assert tls_receiver.received() == []


def test_a_pinned_connection_goes_to_the_vetted_address_with_the_urls_name(tls_receiver, certificate, monkeypatch):
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setattr(transport, "_TLS", trusting)  # trust the test certificate, nothing else changes
    target = Target(scheme="https", host="localhost", port=tls_receiver.port, address="127.0.0.1", path="/hook?x=1")
    tls_receiver.on("/hook?x=1", "wh_secret")
    pool = transport.pool_for(target, maxsize=2)
    results = [transport.post(pool=pool, target=target, msg_id=f"dlv_{i}", body=b'{"n":%d}' % i,
                              secrets=["wh_secret"], timeout=5) for i in range(3)]
    assert all(r.succeeded for r in results), results
    requests = tls_receiver.received()
    assert [r.headers["host"] for r in requests] == [f"localhost:{tls_receiver.port}"] * 3
    assert all(r.valid for r in requests)
    assert len({r.client_port for r in requests}) == 1  # one TLS connection, kept alive


@pytest.mark.django_db
def test_vet_pins_the_address_it_checked(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    target = addresses.vet("https://93.184.215.14:8443/hook?a=b c")
    assert (target.address, target.host, target.port, target.path) == ("93.184.215.14", "93.184.215.14", 8443, "/hook?a=b%20c")
    assert target.host_header == "93.184.215.14:8443"
    for url in ("https://localhost/", "http://93.184.215.14/", "https://[::ffff:127.0.0.1]/", "https://u:p@93.184.215.14/"):
        with pytest.raises(UnsafeUrl):
            addresses.vet(url)


def test_keep_alive_connections_are_reused_and_closed_ones_replaced(receiver):
    target = addresses.parse(receiver.url())
    pool = transport.pool_for(target, maxsize=4)
    send = lambda i: transport.post(pool=pool, target=target, msg_id=f"dlv_{i}", body=b"{}", secrets=["s"], timeout=5)  # noqa: E731
    assert all(send(i).succeeded for i in range(5))
    assert len({r.client_port for r in receiver.received()}) == 1
    receiver.script = lambda path, n: Reply(200, headers={"Connection": "close"})
    assert all(send(i).succeeded for i in range(3))
    assert len({r.client_port for r in receiver.received()[5:]}) == 3  # a new connection each time


def test_a_big_answer_is_cut_to_an_excerpt(receiver):
    receiver.script = lambda path, n: Reply(500, body=b"x" * 200_000)
    target = addresses.parse(receiver.url())
    pool = transport.pool_for(target, maxsize=1)
    result = transport.post(pool=pool, target=target, msg_id="dlv_big", body=b"{}", secrets=["s"], timeout=5)
    assert result.status_code == 500 and len(result.excerpt) == 1024 and not result.succeeded
    receiver.script = None
    again = transport.post(pool=pool, target=target, msg_id="dlv_next", body=b"{}", secrets=["s"], timeout=5)
    assert again.succeeded  # on a fresh connection: the unread body was not left on the old one


def test_a_refused_connection_is_a_failure_not_an_exception():
    target = Target(scheme="http", host="127.0.0.1", port=9, address=None, path="/")
    result = transport.post(pool=transport.pool_for(target, maxsize=1), target=target, msg_id="dlv_x", body=b"{}",
                            secrets=["s"], timeout=2)
    assert not result.succeeded and result.error.startswith("connection") and result.status_code is None


def test_retry_after_accepts_seconds_and_dates():
    import email.utils
    import time

    assert transport.parse_retry_after("120") == 120
    assert transport.parse_retry_after("99999999") == 24 * 3600
    future = email.utils.formatdate(time.time() + 600, usegmt=True)
    assert 590 <= transport.parse_retry_after(future) <= 601
    assert transport.parse_retry_after("soon") is None


def test_the_signature_is_keyed_by_the_secrets_utf8_bytes_as_webhooks_md_says():
    import base64
    import hashlib
    import hmac

    body = '{"type":"donor.created","data":{"name":"Zoë"}}'.encode()
    expected = hmac.new("wh_sécret".encode(), b"dlv_1.1700000000." + body, hashlib.sha256).digest()
    assert transport.sign(secret="wh_sécret", msg_id="dlv_1", timestamp=1700000000, body=body) == \
        "v1," + base64.b64encode(expected).decode()
    two = transport.signature_header(secrets=["a", "b"], msg_id="dlv_1", timestamp=1700000000, body=body)
    assert two.split(" ") == [transport.sign(secret=s, msg_id="dlv_1", timestamp=1700000000, body=body) for s in "ab"]

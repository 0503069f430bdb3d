"""The webhook address guard in production mode (issue 13, defect 10): every IPv6
spelling of an internal IPv4 address is refused — IPv4-mapped, SIIT, NAT64 (well-known
and local-use prefixes), IPv4-compatible, 6to4 and Teredo — and so are site-local and
the other non-global IPv6 ranges, while public addresses behind a translator still pass."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from webhooks import addresses
from webhooks.addresses import UnsafeUrl, is_public

INTERNAL_V4 = [
    "169.254.169.254",  # cloud metadata
    "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "0.0.0.0", "0.0.0.1",
    "192.0.0.170", "198.18.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255",
]
PUBLIC_V4 = ["93.184.215.14", "8.8.8.8", "1.1.1.1"]


def v4_int(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


def spell(prefix: str, v4: str) -> str:
    """`prefix` (an IPv6 network written with a /96) with the IPv4 address in its last 32 bits."""
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Network(prefix).network_address) | v4_int(v4)))


def mapped(v4):
    return spell("::ffff:0:0/96", v4)


def siit(v4):
    return spell("::ffff:0:0:0/96", v4)


def nat64(v4):
    return spell("64:ff9b::/96", v4)


def nat64_local(v4):
    return spell("64:ff9b:1::/96", v4)


def compatible(v4):
    return spell("::/96", v4)


def sixtofour(v4):
    return str(ipaddress.IPv6Address((0x2002 << 112) | (v4_int(v4) << 80) | 1))


def teredo(v4):
    # 2001:0000:<server v4>:<flags>:<port ^ ffff>:<client v4 ^ ffffffff>
    server = v4_int("65.54.227.120")
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | (0x8000 << 48) | (0x63BF << 32)
                                     | (v4_int(v4) ^ 0xFFFFFFFF)))


EMBEDDINGS = {"mapped": mapped, "siit": siit, "nat64": nat64, "nat64-local": nat64_local,
              "ipv4-compatible": compatible, "6to4": sixtofour, "teredo": teredo}
# Spellings that reach the embedded IPv4 address: a public one there is a public address.
TRANSLATING = {"mapped", "siit", "nat64", "6to4"}


@pytest.mark.parametrize("v4", INTERNAL_V4)
@pytest.mark.parametrize("kind", sorted(EMBEDDINGS))
def test_every_ipv6_spelling_of_an_internal_ipv4_address_is_refused(kind, v4):
    address = EMBEDDINGS[kind](v4)
    assert not is_public(v4)
    assert not is_public(address), f"{kind}: {address} embeds {v4}"


@pytest.mark.parametrize("v4", PUBLIC_V4)
@pytest.mark.parametrize("kind", sorted(EMBEDDINGS))
def test_public_ipv4_behind_a_translator_passes_and_the_deprecated_ranges_never_do(kind, v4):
    assert is_public(EMBEDDINGS[kind](v4)) is (kind in TRANSLATING)


@pytest.mark.parametrize("address", [
    "64:ff9b::a9fe:a9fe", "64:ff9b::169.254.169.254", "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe",
    "64:ff9b:1:ffff::1", "::a9fe:a9fe", "::127.0.0.1", "::1", "::", "::ffff:0:a9fe:a9fe",
    "::ffff:0:10.0.0.1", "::ffff:169.254.169.254", "fec0::1", "fec0::a9fe:a9fe", "feff:ffff::1",
    "2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:0a00:0001:1234::5", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001::1", "fd00::1", "fe80::1", "fe80::1%eth0", "ff02::1", "100::1", "2001:db8::1",
])
def test_literal_spellings_from_the_issue_are_refused(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "2a00:1450:4001:80e::200e", "93.184.215.14",
                                     "64:ff9b::5db8:d70e", "::ffff:93.184.215.14", "2002:5db8:d70e::1"])
def test_public_addresses_pass(address):
    assert is_public(address)


internal_v4 = st.sampled_from([
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
]).flatmap(lambda net: st.integers(
    int(ipaddress.IPv4Network(net).network_address), int(ipaddress.IPv4Network(net).broadcast_address)
)).map(lambda n: str(ipaddress.IPv4Address(n)))


@hsettings(max_examples=400, deadline=None)
@given(v4=internal_v4, kind=st.sampled_from(sorted(EMBEDDINGS)))
def test_no_embedding_of_any_internal_ipv4_address_passes(v4, kind):
    assert not is_public(EMBEDDINGS[kind](v4))


@hsettings(max_examples=200, deadline=None)
@given(low=st.integers(0, 2**80 - 1))
def test_nothing_under_the_refused_prefixes_passes(low):
    for net in ("64:ff9b:1::/48", "fec0::/10", "2001::/32", "::/96"):
        network = ipaddress.IPv6Network(net)
        address = ipaddress.IPv6Address(int(network.network_address) | (low % network.num_addresses))
        assert not is_public(str(address)), address


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::a9fe:a9fe]", "[::a9fe:a9fe]",
                                  "[::ffff:0:a9fe:a9fe]", "[fec0::1]", "[2002:a9fe:a9fe::1]",
                                  "[2001:0:4136:e378:8000:63bf:3fff:fdd2]"])
def test_vet_refuses_these_urls_in_production_mode(settings, host):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeUrl, match="public addresses"):
        addresses.vet(f"https://{host}/hook")


@pytest.mark.django_db
def test_creating_an_endpoint_at_the_nat64_metadata_address_is_refused(settings, org, write_client):
    from tests.support.api import assert_error

    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = write_client.post("/api/v1/webhook-endpoints", {"url": "https://[64:ff9b::a9fe:a9fe]/hook",
                                                               "enabled_events": ["donation.created"]}, format="json")
    assert_error(response, 400, "validation_failed", param="url")

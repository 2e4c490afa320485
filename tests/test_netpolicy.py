"""The webhook address policy: URL syntax, every address form, resolution, masking."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from aerovision import netpolicy
from aerovision.netpolicy import AddressRefused, InvalidWebhookURL, Unresolvable

# -- syntax


@pytest.mark.parametrize(
    "url",
    [
        "https://your-server.com/callback",
        "http://127.0.0.1:9/hook",
        "https://user:p%40ss@hooks.example.com:8443/a/b?x=1&y=%0D#frag",
        "http://[2606:4700::1111]/x",
        "https://bücher.example/ä",
        "HTTPS://EXAMPLE.COM/",
    ],
)
def test_valid_urls_are_kept_as_given(url: str) -> None:
    assert netpolicy.validate_url(url) == url


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\r", "U+000D"), ("\n", "U+000A"), ("\t", "U+0009"), ("\x00", "U+0000"),
        ("\x7f", "U+007F"), ("\x85", "U+0085"), ("\x9b", "U+009B"), (" ", "U+0020"),
        ("\u00a0", "U+00A0"), ("\u2028", "U+2028"), ("\u200b", "U+200B"),
        ("\u202e", "U+202E"), ("\ufeff", "U+FEFF"), ("\ud800", "U+D800"),
    ],
)
@pytest.mark.parametrize("where", ["host", "path", "query"])
def test_control_characters_and_whitespace_are_refused_anywhere(
    char: str, name: str, where: str
) -> None:
    url = {
        "host": f"http://exa{char}mple.com/x",
        "path": f"http://example.com/a{char}b",
        "query": f"http://example.com/a?b={char}",
    }[where]
    with pytest.raises(InvalidWebhookURL) as caught:
        netpolicy.validate_url(url)
    assert str(caught.value) == (
        f"url must not contain control characters or whitespace: {name} at position "
        f"{url.index(char)}"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "url must be an http:// or https:// URL, got 'ftp://example.com/x'"),
        ("example.com/x", "url must be an http:// or https:// URL, got 'example.com/x'"),
        ("http://", "url must be an http:// or https:// URL, got 'http://'"),
        ("file:///etc/passwd", "url must be an http:// or https:// URL, got 'file:///etc/passwd'"),
        ("gopher://u:secret@h/", "url must be an http:// or https:// URL, got 'gopher://u:***@h/'"),
    ],
)
def test_only_http_and_https_with_a_host(url: str, message: str) -> None:
    with pytest.raises(InvalidWebhookURL) as caught:
        netpolicy.validate_url(url)
    assert str(caught.value) == message


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://example.com:0/",
                                 "http://example.com:x/", "http://[::1/", "http://[not-ipv6]/",
                                 "http://0251.0376.0251.0376/"])
def test_urls_the_sender_cannot_parse_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookURL, match=r"^url is not a valid URL: "):
        netpolicy.validate_url(url)


def test_length_limit() -> None:
    url = "https://example.com/" + "a" * (netpolicy.MAX_URL_LENGTH - 20)
    assert netpolicy.validate_url(url) == url
    with pytest.raises(InvalidWebhookURL, match="^url is longer than 2048 characters$"):
        netpolicy.validate_url(url + "a")


# -- addresses


REFUSED = [
    ("127.0.0.1", "a loopback address"),
    ("127.255.0.9", "a loopback address"),
    ("::1", "a loopback address"),
    ("0.0.0.0", "the unspecified address"),
    ("::", "the unspecified address"),
    ("10.0.0.5", "a private address"),
    ("172.16.3.4", "a private address"),
    ("192.168.1.1", "a private address"),
    ("fc00::1", "a private address"),
    ("fd12:3456::1", "a private address"),
    ("fec0::1", "a private address"),
    ("169.254.1.1", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("100.127.255.254", "a shared (carrier-grade NAT) address"),
    ("224.0.0.1", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("192.0.2.7", "a special-purpose address (not globally routable)"),
    ("198.18.0.1", "a special-purpose address (not globally routable)"),
    ("2001:db8::1", "a special-purpose address (not globally routable)"),
    ("169.254.169.254", "a cloud metadata address"),
    ("169.254.170.2", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"),
    ("168.63.129.16", "a cloud metadata address"),
    ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("::ffff:10.1.2.3", "an IPv4-mapped form of 10.1.2.3, a private address"),
    ("::ffff:169.254.169.254", "an IPv4-mapped form of 169.254.169.254, a cloud metadata address"),
    ("::127.0.0.1", "an IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("2002:7f00:1::", "a 6to4 form of 127.0.0.1, a loopback address"),
    ("2002:a9fe:a9fe::1", "a 6to4 form of 169.254.169.254, a cloud metadata address"),
    ("64:ff9b::10.0.0.1", "a NAT64 form of 10.0.0.1, a private address"),
    ("64:ff9b::169.254.169.254", "a NAT64 form of 169.254.169.254, a cloud metadata address"),
]

ALLOWED = ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8",
           "64:ff9b::8.8.8.8", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_addresses_say_why(address: str, why: str) -> None:
    assert netpolicy.why_refused(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert netpolicy.why_refused(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_allow_private_allows_everything_but_metadata(address: str, why: str) -> None:
    allowed = netpolicy.why_refused(ipaddress.ip_address(address), allow_private=True)
    if "cloud metadata" in why:
        assert allowed == why
    else:
        assert allowed is None


# -- URLs as the sender would resolve them (the system resolver; no DNS needed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://localhost/", "localhost is a loopback name (RFC 6761)"),
        ("http://localhost./", "localhost. is a loopback name (RFC 6761)"),
        ("http://LocalHost:8080/", "localhost is a loopback name (RFC 6761)"),
        ("http://api.localhost/", "api.localhost is a loopback name (RFC 6761)"),
        ("http://0x7f.1/", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
        ("http://017700000001/", "017700000001 resolves to 127.0.0.1, a loopback address"),
        ("http://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/",
         "::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://0xa9fea9fe/", "0xa9fea9fe resolves to 169.254.169.254, a cloud metadata address"),
        ("http://2852039166/", "2852039166 resolves to 169.254.169.254, a cloud metadata address"),
        ("http://[::ffff:169.254.169.254]/",
         ("::ffff:169.254.169.254 is an IPv4-mapped form of 169.254.169.254, a cloud metadata "
         "address")),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is a cloud metadata address"),
        ("http://user:pw@10.0.0.5/", "10.0.0.5 is a private address"),
        ("http://0/", "0 resolves to 0.0.0.0, the unspecified address"),
    ],
)
def test_urls_are_judged_by_the_address_they_reach(url: str, message: str) -> None:
    with pytest.raises(AddressRefused) as caught:
        netpolicy.check_url(url, allow_private=False)
    assert str(caught.value) == message


def test_allow_private_accepts_local_receivers_but_not_metadata() -> None:
    assert netpolicy.check_url("http://127.0.0.1:6379/", allow_private=True) == ["127.0.0.1"]
    assert netpolicy.check_url("http://localhost:9/", allow_private=True) == ["127.0.0.1"]
    assert netpolicy.check_url("http://0x7f.1/", allow_private=True) == ["127.0.0.1"]
    for url in ("http://169.254.169.254/", "http://0xa9fea9fe/", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(AddressRefused) as caught:
            netpolicy.check_url(url, allow_private=True)
        assert caught.value.always


def test_a_public_literal_is_allowed_without_a_lookup() -> None:
    assert netpolicy.check_url("https://93.184.216.34/hook", allow_private=False) == ["93.184.216.34"]
    assert netpolicy.check_url("http://[2606:4700::1111]:8080/", allow_private=False) == [
        "2606:4700::1111"
    ]


def test_a_name_that_does_not_resolve() -> None:
    with pytest.raises(Unresolvable, match=r"^no-such-host\.invalid does not resolve \("):
        netpolicy.check_url("https://no-such-host.invalid/hook", allow_private=False)


def test_one_refused_address_refuses_the_name() -> None:
    """A name is judged by every address it resolves to, whatever the order."""

    async def lookup(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(AddressRefused) as caught:
        asyncio.run(netpolicy.check_host_async("mixed.example", 443, allow_private=False,
                                               lookup=lookup))
    assert str(caught.value) == "mixed.example resolves to 10.0.0.5, a private address"


def test_a_name_resolving_to_public_addresses_is_allowed() -> None:
    async def lookup(host: str, port: int) -> list[str]:
        return ["2606:4700::1111", "93.184.216.34", "93.184.216.34"]

    assert asyncio.run(
        netpolicy.check_host_async("hooks.example", 443, allow_private=False, lookup=lookup)
    ) == ["2606:4700::1111", "93.184.216.34"]


# -- masking


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:pass@host/x?y=1", "https://user:***@host/x?y=1"),
        ("https://user:p@ss:w@host:8443/x", "https://user:***@host:8443/x"),
        ("https://tok_3x4mpl3@host/x", "https://***@host/x"),
        ("https://user:@host/", "https://user:***@host/"),
        ("https://host/path@with-at?q=a@b#c@d", "https://host/path@with-at?q=a@b#c@d"),
        ("https://host/", "https://host/"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert netpolicy.mask_url(url) == masked


def test_secrets_of_a_url() -> None:
    assert netpolicy.secrets_of("https://us:p%40ss@host/") == ["us:p%40ss", "p%40ss", "p@ss"]
    assert netpolicy.secrets_of("https://token@host/") == ["token"]
    assert netpolicy.secrets_of("https://host/?token=x") == []

"""origin_of: the origin a Referer names, compared against the trusted origins for cookie changes (CWE-352)."""

import pytest

from handlers.base import origin_of


@pytest.mark.parametrize(
    "url, origin",
    [
        ("https://App.Example.com:8443/settings?tab=1", "https://app.example.com:8443"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("ftp://app.example.com/file", None),  # a scheme no web page is served from
        ("javascript://app.example.com/", None),
        ("http:///no-host", None),  # http(s) without a host names no origin
        ("not a url", None),
        ("", None),
        ("http://[::1", None),  # urlsplit raises ValueError
    ],
    ids=["https-port", "http", "ftp", "javascript", "no-host", "words", "empty", "bad-ipv6"],
)
def test_origin_of(url, origin):
    assert origin_of(url) == origin

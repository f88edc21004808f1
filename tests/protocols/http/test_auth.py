import base64

import pytest

from sensorium.protocols.http.auth import credentials_ok

T = "s3cret"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("header", [
    f"Token {T}", f"token {T}", f"Bearer {T}", f"Token admin:{T}", basic("admin", T),
    basic("", T),
])
def test_accepted_headers(header):
    assert credentials_ok(header, b"", T)


@pytest.mark.parametrize("header", [
    "Token nope", f"Token {T}x", "Bearer", basic("admin", "nope"), "Basic !!!", f"Digest {T}",
    basic(T, "x"),
])
def test_refused_headers(header):
    assert not credentials_ok(header, b"", T)


def test_query_string_password():
    assert credentials_ok(None, f"db=x&u=admin&p={T}".encode(), T)
    assert not credentials_ok(None, b"db=x&u=admin&p=nope", T)
    assert not credentials_ok(None, b"db=x", T)
    assert not credentials_ok(None, b"", T)

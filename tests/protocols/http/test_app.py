import base64

import pytest

from sensorium.protocols.http.app import create_app


def test_openapi_lists_every_route(client):
    doc = client.get("/openapi.json").json()
    for path in ("/api/ingest/batch", "/api/ingest/columns", "/write", "/api/v2/write",
                 "/api/sensors", "/api/sensors/{sensor_id}/data", "/api/query", "/api/latest",
                 "/api/series/{key}/range", "/ping", "/health"):
        assert path in doc["paths"], path
    assert client.get("/docs").status_code == 200


def test_unknown_route_and_method(client):
    r = client.get("/nope")
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    assert client.request("PUT", "/api/ingest/batch").status_code == 405
    r = client.get("/api/v2/nope")
    assert r.status_code == 404 and r.json()["code"] == "not found"


@pytest.mark.parametrize(("headers", "params", "ok"), [
    ({}, {}, False), ({"Authorization": "Token t0k"}, {}, True),
    ({"Authorization": "Bearer t0k"}, {}, True), ({"Authorization": "Token no"}, {}, False),
    ({"Authorization": "Basic " + base64.b64encode(b"u:t0k").decode()}, {}, True),
    ({}, {"u": "u", "p": "t0k"}, True), ({}, {"p": "x"}, False),
])
def test_token(make_client, headers, params, ok):
    client = make_client(token="t0k")
    r = client.get("/api/series", headers=headers, params=params)
    assert r.status_code == (200 if ok else 401)
    if not ok:
        assert r.json() == {"error": "unauthorized access: missing or wrong token"}
        r = client.post("/api/v2/write", content=b"m v=1", headers=headers, params=params)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert client.get("/ping").status_code == 204  # probes stay open
    assert client.get("/health").status_code == 200


def test_an_unexpected_error_is_a_500_and_the_app_lives(db, monkeypatch):
    from tests.protocols.http.conftest import Client
    client = Client(create_app(db))

    def boom(*args, **kwargs):
        raise RuntimeError("bug")
    monkeypatch.setattr(db, "keys", boom)
    r = client.get("/api/series")
    assert (r.status_code, r.json()) == (500, {"error": "internal error"})
    monkeypatch.undo()
    assert client.get("/api/series").status_code == 200

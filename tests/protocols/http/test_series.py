def test_create_alter_delete(client, db):
    r = client.post("/api/series", json={"key": "k", "labels": {"a": "b"}, "retention_ms": 1000,
                                         "duplicate_policy": "last"})
    assert r.status_code == 201
    assert db.describe("k") == {"labels": {"a": "b"}, "retention_msecs": 1000,
                                "duplicate_policy": "last", "source_key": None, "rules": []}
    assert client.post("/api/series", json={"key": "k"}).status_code == 409
    r = client.patch("/api/series/k", json={"labels": {"c": "d"}, "retention_ms": 0})
    assert r.json()["labels"] == {"c": "d"} and r.json()["retention_msecs"] == 0
    assert client.delete("/api/series/k").json() == {"key": "k", "deleted": True}
    assert not db.exists("k")
    assert client.delete("/api/series/k").status_code == 404
    assert client.patch("/api/series/k", json={}).status_code == 404


def test_bad_bodies_name_the_field(client):
    for body, field in [({"labels": {}}, "key"), ({"key": "k", "retention_ms": -1},
                                                  "retention_ms"),
                        ({"key": "k", "extra": 1}, "extra"), ({"key": "k", "labels": [1]},
                                                              "labels")]:
        r = client.post("/api/series", json=body)
        assert (r.status_code, r.json()["field"]) == (400, field)
    r = client.post("/api/series", json={"key": "k", "duplicate_policy": "newest"})
    assert (r.status_code, r.json()["error"]) == (400, "Unknown DUPLICATE_POLICY")
    r = client.post("/api/series", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_rules(client, db):
    db.create("src")
    db.create("dst")
    r = client.post("/api/series/src/rules", json={"dest": "dst", "aggregation": "max",
                                                   "bucket": "1min"})
    assert r.status_code == 201 and r.json()["bucket_ms"] == 60_000
    assert db.describe("src")["rules"] == [["dst", 60_000, "MAX", 0]]
    again = client.post("/api/series/src/rules", json={"dest": "dst", "aggregation": "max",
                                                       "bucket": 60000})
    assert again.status_code == 409
    bad = client.post("/api/series/src/rules", json={"dest": "dst", "aggregation": "max",
                                                     "bucket": "soon"})
    assert (bad.status_code, bad.json()["field"]) == (400, "bucket")
    assert client.delete("/api/series/src/rules/dst").is_success
    assert db.describe("src")["rules"] == []
    assert client.delete("/api/series/src/rules/dst").status_code == 409


def test_delete_samples(client, db):
    db.madd(["k"] * 5, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    r = client.delete("/api/series/k/samples", params={"from": 2, "to": 4})
    assert r.json() == {"key": "k", "deleted": 3}
    assert db.range("k", "-", "+") == [(1, 1.0), (5, 5.0)]
    assert client.delete("/api/series/k/samples", params={"from": 2}).status_code == 400


def test_keys_with_slashes_and_line_protocol_characters(client, db):
    key = "weather,station=A/B:temp"
    db.madd([key], [1], [2.0])
    from urllib.parse import quote
    assert client.get(f"/api/series/{quote(key, safe='')}/range").json()["samples"] == [[1, 2.0]]
    assert client.get(f"/api/series/{quote(key, safe='')}").json()["key"] == key
    assert client.get(f"/api/sensors/{quote(key, safe='')}/current").json()["value"] == 2.0


def test_management_bodies_are_bounded_too(make_client):
    client = make_client(max_body_bytes=1000)
    r = client.post("/api/series", json={"key": "k", "labels": {str(i): "x" * 10
                                                                 for i in range(200)}})
    assert r.status_code == 413 and "error" in r.json()

import numpy as np

HOUR = 3_600_000
POLICY = {"filter": ["type=t"], "raw_retention": "7d",
          "tiers": [{"name": "1m", "bucket": "1min", "retention": "1y",
                     "aggregators": ["avg", "max"]},
                    {"name": "1h", "bucket": "1h", "retention": "5y"}]}


def test_set_list_apply_and_drop(client, db):
    db.create("old", labels={"type": "t"})
    ts = 1_700_000_000_000 // HOUR * HOUR + np.arange(720) * 10_000
    db.madd(["old"] * len(ts), ts, np.arange(720.0))
    put = client.request("PUT", "/api/policies/temps", json=POLICY)
    assert put.status_code == 200, put.text
    assert put.json()["applied"] == {"series": 1, "tiers_created": 2,
                                     "tiers_rebuilt_or_removed": []}
    assert put.json()["policy"]["tiers"][1]["retention_ms"] == 5 * 365 * 86_400_000
    assert [p["name"] for p in client.get("/api/policies").json()["policies"]] == ["temps"]
    # the existing series was backfilled; a new one gets the tiers at once
    got = client.get("/api/aggregate", params={"key": "old", "bucket": "1h",
                                               "aggregation": "max", "from": 0}).json()
    assert got["series"][0]["sources"][-1]["key"] == "old:1h"
    assert got["series"][0]["values"] == [359.0, 719.0]
    client.post("/api/series", json={"key": "new", "labels": {"type": "t"}})
    assert db.exists("new:1m") and db.exists("new:1h")
    gone = client.delete("/api/policies/temps", params={"delete_tiers": "true"})
    assert gone.status_code == 200 and not db.exists("new:1h")
    assert client.delete("/api/policies/temps").status_code == 404


def test_bad_policies_are_refused_with_the_field(client):
    bad = client.request("PUT", "/api/policies/p", json={**POLICY, "tiers": [{"bucket": "x"}]})
    assert bad.status_code == 400 and "tiers[0].bucket" in bad.json()["error"]
    other = client.request("PUT", "/api/policies/p", json={**POLICY, "name": "q"})
    assert other.status_code == 400 and other.json()["field"] == "name"
    assert client.request("PUT", "/api/policies/p", content=b"[").status_code == 400
    assert client.get("/api/policies").json() == {"policies": []}

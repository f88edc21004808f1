def test_liveness_endpoints(client):
    r = client.get("/ping")
    assert r.status_code == 204 and r.headers["x-influxdb-version"].startswith("sensorium")
    assert client.request("HEAD", "/ping").status_code == 204
    assert client.get("/health").json()["status"] == "pass"
    assert client.get("/ready").json()["status"] == "ready"


def test_influxql_create_database_is_a_no_op(client):
    r = client.post("/query", data={"q": 'CREATE DATABASE "telegraf"'})
    assert r.json() == {"results": [{"statement_id": 0}]}
    assert client.get("/query", params={"q": "SHOW DATABASES"}).is_success
    r = client.get("/query", params={"q": "SELECT * FROM cpu"})
    assert r.status_code == 400 and r.json()["code"] == "invalid"

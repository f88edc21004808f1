"""``sensorium policy``: list, set and drop tier policies, embedded or on a running server.

A policy file is the server's TOML config (its ``[[policies]]`` tables) or JSON (one policy
or a list). Setting a policy on the embedded database shows a progress bar while the series
it governs get their tiers (new tiers are backfilled); a server logs that progress itself.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

from .progress import Progress


def read_policies(path: str) -> list[dict[str, Any]]:
    """The policies of a TOML (``[[policies]]``) or JSON file.

    Raises:
        ValueError: the file holds no policy, or is neither TOML nor JSON.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".json"):
        doc = json.loads(raw)
        found = doc if isinstance(doc, list) else [doc]
    else:
        found = tomllib.loads(raw.decode()).get("policies", [])
    if not found or not all(isinstance(p, dict) for p in found):
        raise ValueError(f"{path}: no policy found (TOML [[policies]] tables or JSON objects)")
    return found


def set_embedded(db: Any, policies: list[dict[str, Any]], quiet: bool = False
                 ) -> list[dict[str, Any]]:
    out = []
    for policy in policies:
        bar = Progress(None, f"policy {policy.get('name')}", "series", quiet=quiet)

        def progress(done: int, total: int, bar: Progress = bar) -> None:
            bar.total = total
            bar.update(done - bar.done)

        with bar:
            out.append({"name": policy.get("name"), **db.set_policy(policy, progress)})
    return out


def set_remote(client: Any, policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for policy in policies:
        name = policy.get("name")
        if not name:
            raise ValueError("every policy needs a name")
        reply = client.put(f"/api/policies/{name}", json=policy)
        if reply.status_code != 200:
            raise ValueError(f"policy {name}: {reply.json().get('error', reply.text)}")
        out.append({"name": name, **reply.json()["applied"]})
    return out

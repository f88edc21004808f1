"""Concurrent line-protocol writers: the one client that drives every system's ingest.

``clients`` processes are forked once, after the bodies are built, so each inherits them
without copying or pickling; posting costs them a send and a receive, no formatting. A job
names a server URL, a write path and a run of body indices; client ``j`` posts the indices
``j, j + clients, …`` of the run one after another over one keep-alive ``httpx.Client``
(closed loop: the next request leaves when the reply is in), as ``http_ingest.py`` does.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

START_DELAY_S = 0.3  # every client is waiting on the clock before the first post
REQUEST_TIMEOUT_S = 300.0


@dataclass
class RunResult:
    """One run of bodies posted by all clients: lines written, wall time, request latencies."""

    samples: int
    elapsed_s: float
    latencies_s: list[float]


def _client(bodies: Sequence[bytes], lines: Callable[[int], int],
            jobs: mp.Queue, results: mp.Queue) -> None:  # type: ignore[type-arg]
    import httpx

    while (job := jobs.get()) is not None:
        url, path, ids, start_at = job
        lat: list[float] = []
        samples = 0
        error = None
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as c:
            time.sleep(max(0.0, start_at - time.time()))
            for k in ids:
                t = time.perf_counter()
                r = c.post(path, content=bodies[k])
                lat.append(time.perf_counter() - t)
                if r.status_code != 204:
                    error = f"{url}{path}: {r.status_code} {r.text[:300]}"
                    break
                samples += lines(k)
        results.put((samples, lat, time.time(), error))


class LineProtocolClients:
    """A pool of writer processes; ``post`` runs one job on all of them and waits."""

    def __init__(self, bodies: Sequence[bytes], lines: Callable[[int], int],
                 clients: int = 4) -> None:
        ctx = mp.get_context("fork")
        self.clients = clients
        self._jobs = [ctx.Queue() for _ in range(clients)]
        self._results = ctx.Queue()
        self._procs = [ctx.Process(target=_client, args=(bodies, lines, q, self._results),
                                   daemon=True) for q in self._jobs]
        for p in self._procs:
            p.start()

    def post(self, url: str, path: str, ids: range) -> RunResult:
        """Posts bodies ``ids`` to ``url + path``, spread over the clients round-robin.

        Raises:
            RuntimeError: a request got anything but 204 (the message names the reply).
        """
        start_at = time.time() + START_DELAY_S
        for j, q in enumerate(self._jobs):
            q.put((url, path, ids[j::self.clients], start_at))
        got = [self._results.get() for _ in self._jobs]
        errors = [g[3] for g in got if g[3]]
        if errors:
            raise RuntimeError(errors[0])
        return RunResult(samples=sum(g[0] for g in got),
                         elapsed_s=max(g[2] for g in got) - start_at,
                         latencies_s=[x for g in got for x in g[1]])

    def close(self) -> None:
        for q in self._jobs:
            q.put(None)
        for p in self._procs:
            p.join(10)

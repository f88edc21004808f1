"""Pipelined TS.ADD / TS.MADD ingest through the RESP server (issue #3 targets).

    python benchmarks/resp_ingest.py                      # both modes, both clients
    python benchmarks/resp_ingest.py --mode add --client raw --clients 4 --repeat 5

The server runs in its own process (an asyncio loop plus its engine thread), the clients in
others. Two clients:

* ``redis-py``: a real ``redis.Redis().pipeline(transaction=False)`` per batch, built and
  sent in the timed loop (what an application does; on a 2-core box the clients' own Python
  work competes with the server for the CPU).
* ``raw``: the same pipelines packed by redis-py's packer *before* the clock starts, then
  written to the socket and their replies parsed with hiredis: what the server can ingest
  when clients are cheap (many devices, each sending a little).

Reports samples/s per repeat and the median, and the server's CPU time per sample (from
``/proc``; on a shared, loaded machine it moves less than the wall-clock rate). Not a test:
nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time

import hiredis

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))


def _serve(path: str, fsync: str, port_q: mp.Queue, stop: mp.Event) -> None:  # type: ignore[type-arg]
    import sensorium
    from sensorium.protocols.resp import serve_resp

    db = sensorium.open(path, fsync=fsync)

    async def main() -> None:
        server = await serve_resp(db, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())
    db.close()


def _commands(mode: str, prefix: str, keys: int, samples: int, per_cmd: int,
              t0: int) -> list[tuple[str, ...]]:
    cmds: list[tuple[str, ...]] = []
    if mode == "add":
        for i in range(samples):
            cmds.append(("TS.ADD", f"{prefix}:{i % keys}", str(t0 + i // keys),
                         f"{20 + (i % 97) / 10:.2f}"))
        return cmds
    for start in range(0, samples, per_cmd):
        args: list[str] = ["TS.MADD"]
        for i in range(start, min(start + per_cmd, samples)):
            args += [f"{prefix}:{i % keys}", str(t0 + i // keys), f"{20 + (i % 97) / 10:.2f}"]
        cmds.append(tuple(args))
    return cmds


def _client(port: int, mode: str, kind: str, prefix: str, keys: int, samples: int,
            per_cmd: int, pipeline: int, ready: mp.Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import redis
    cmds = _commands(mode, prefix, keys, samples, per_cmd, 1_700_000_000_000)
    batches = [cmds[i : i + pipeline] for i in range(0, len(cmds), pipeline)]
    r = redis.Redis(port=port, protocol=2)
    if mode == "madd":  # MADD needs the keys
        with r.pipeline(transaction=False) as p:
            for k in range(keys):
                p.execute_command("TS.CREATE", f"{prefix}:{k}")
            p.execute()
    if kind == "raw":
        conn = r.connection_pool.get_connection()
        packed = [b"".join(conn.pack_commands(batch)) for batch in batches]
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = hiredis.Reader()
        ready.wait()
        t = time.perf_counter()
        for data, batch in zip(packed, batches, strict=True):
            sock.sendall(data)
            got = 0
            while got < len(batch):
                reader.feed(sock.recv(1 << 20))
                while (reply := reader.gets()) is not False:
                    got += 1
                    if isinstance(reply, hiredis.ReplyError):
                        raise RuntimeError(reply)
        took = time.perf_counter() - t
    else:
        ready.wait()
        t = time.perf_counter()
        for batch in batches:
            with r.pipeline(transaction=False) as p:
                for cmd in batch:
                    p.execute_command(*cmd)
                p.execute()
        took = time.perf_counter() - t
    out.put(took)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0.0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(port: int, mode: str, kind: str, clients: int, keys: int, samples: int,
             per_cmd: int, pipeline: int, tag: str, server_pid: int) -> tuple[float, float]:
    ready = mp.Barrier(clients + 1)
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=_client, args=(port, mode, kind, f"{tag}:{c}", keys,
                                              samples, per_cmd, pipeline, ready, out))
             for c in range(clients)]
    for p in procs:
        p.start()
    ready.wait()
    cpu = _cpu_s(server_pid)
    t = time.perf_counter()
    for _ in procs:
        out.get()
    wall = time.perf_counter() - t
    cpu = _cpu_s(server_pid) - cpu
    for p in procs:
        p.join()
    return clients * samples / wall, cpu / (clients * samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["add", "madd", "both"], default="both")
    ap.add_argument("--client", choices=["raw", "redis-py", "both"], default="both")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--keys", type=int, default=100, help="series per client")
    ap.add_argument("--samples", type=int, default=200_000, help="samples per client")
    ap.add_argument("--pipeline", type=int, default=1000, help="commands per pipeline")
    ap.add_argument("--madd-size", type=int, default=100, help="samples per TS.MADD")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fsync", default="batch", choices=["batch", "periodic", "none"])
    args = ap.parse_args()

    modes = ["add", "madd"] if args.mode == "both" else [args.mode]
    kinds = ["raw", "redis-py"] if args.client == "both" else [args.client]
    stop = mp.Event()
    port_q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        server = mp.Process(target=_serve, args=(os.path.join(tmp, "db"), args.fsync,
                                                 port_q, stop))
        server.start()
        port = port_q.get(timeout=60)
        print(f"server pid {server.pid} port {port}; {args.clients} clients x "
              f"{args.samples:,} samples, {args.keys} series each, pipelines of "
              f"{args.pipeline} commands, fsync={args.fsync}", flush=True)
        try:
            for mode in modes:
                for kind in kinds:
                    pipeline = args.pipeline if mode == "add" else max(
                        1, args.pipeline * 100 // args.madd_size // 10)
                    runs = [run_once(port, mode, kind, args.clients, args.keys, args.samples,
                                     args.madd_size, pipeline, f"{mode}{kind}{i}", server.pid)
                            for i in range(args.repeat)]
                    rates = [r for r, _ in runs]
                    cpu_us = statistics.median(c for _, c in runs) * 1e6
                    label = ("TS.ADD" if mode == "add" else f"TS.MADD x{args.madd_size}")
                    print(f"{label:14s} {kind:9s} median {statistics.median(rates):>11,.0f} "
                          f"samples/s   runs: {', '.join(f'{r:,.0f}' for r in rates)}; "
                          f"server CPU {cpu_us:.2f} us/sample",
                          flush=True)
        finally:
            stop.set()
            server.join(60)


if __name__ == "__main__":
    main()

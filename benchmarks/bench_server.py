"""Live server load test on loopback: WebSocket and SSE clients while the pipeline runs.

Run with ``.venv/bin/python benchmarks/bench_server.py [--clients 50] [--duration 30] [--demo]``.

Three phases, each bounded in count and time and stopping by itself:

1. Pipeline: the recording is processed without server or client, then served to
   ``--clients`` clients (half WebSocket, half SSE, in a separate process) that stay
   for the whole run (at most ``--max-seconds``); ``--repeats`` pairs, alternating.
   Models are loaded once, before anything is timed. Prints wall seconds and the
   slowdown of the best run of each kind; and, steadier on a shared machine, the
   CPU seconds the server's own threads (event loop, bridge, override watch) used
   next to the pipeline's (target: under 5 %).
2. Steady: the clients on the finished session while events come at ``--rate`` per
   second for ``--duration`` seconds. Prints delivered events per second and drops.
3. Burst: ``--burst`` events emitted as fast as the emitter goes (at most
   ``--duration`` seconds). Prints the same; drops and resyncs are expected there,
   by design of the bounded per-client queues.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Bytes of padding per synthetic event (about a segments event of a few segments).
EVENT_PAD = 1500
_TICKS = os.sysconf("SC_CLK_TCK")


# -- the client process -----------------------------------------------------------------------


def _ends_stream(message: dict[str, Any]) -> bool:
    run_end = message.get("kind") == "summary" and message.get("stage") == "run"
    return run_end or bool((message.get("data") or {}).get("bench_end"))


async def _client(url: str, transport: str, deadline: float, connected: asyncio.Event, counts: dict[str, Any]) -> None:
    import httpx
    import websockets

    def take(message: dict[str, Any]) -> bool:
        kind = message["kind"]
        counts[kind] = counts.get(kind, 0) + 1
        counts["messages"] += 1
        if kind == "summary" and "first_dropped_seq" in message.get("data", {}):
            counts["dropped"] += message["data"]["dropped"]
        counts["last"] = time.time()
        return _ends_stream(message)

    try:
        async with asyncio.timeout(max(deadline - time.time(), 1.0)):
            if transport == "ws":
                async with websockets.connect(f"{url.replace('http', 'ws')}/ws", max_size=None) as socket:
                    take(json.loads(await socket.recv()))  # the snapshot: attached
                    connected.set()
                    async for text in socket:
                        if take(json.loads(text)):
                            break
            else:
                async with (
                    httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as http,
                    http.stream("GET", f"{url}/events") as response,
                ):
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            connected.set()
                            if take(json.loads(line[6:])):
                                break
    except TimeoutError:
        counts["timed_out"] = True


async def _clients(url: str, clients: int, seconds: float, ready: Any) -> list[dict[str, Any]]:
    deadline = time.time() + seconds
    connected = [asyncio.Event() for _ in range(clients)]
    counts = [
        {"transport": "ws" if i % 2 == 0 else "sse", "messages": 0, "dropped": 0, "timed_out": False}
        for i in range(clients)
    ]
    tasks = [
        asyncio.create_task(_client(url, counts[i]["transport"], deadline, connected[i], counts[i]))
        for i in range(clients)
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in connected)), 60)
    ready.set()
    await asyncio.gather(*tasks)
    return counts


def client_process(url: str, clients: int, seconds: float, ready: Any, results: Any) -> None:
    """Connect ``clients`` clients, set ``ready``, read until the stream ends; put the counts on ``results``."""
    counts = asyncio.run(_clients(url, clients, seconds, ready))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"clients": counts, "cpu_seconds": usage.ru_utime + usage.ru_stime})


class Clients:
    """The client process: started, waited for until every client is attached, and its counts collected."""

    def __init__(self, url: str, clients: int, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready = context.Event()
        self.results = context.Queue()
        self.process = context.Process(target=client_process, args=(url, clients, seconds, self.ready, self.results))
        self.process.start()
        if not self.ready.wait(120):
            self.process.kill()
            msg = f"{clients} clients did not connect within 120 s"
            raise TimeoutError(msg)

    def collect(self, timeout: float) -> dict[str, Any]:
        result = self.results.get(timeout=timeout)
        self.process.join(30)
        return result


# -- the measured process ---------------------------------------------------------------------


def thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds (user + system) a live thread has used, from ``/proc``; 0 when it is gone."""
    if thread is None or thread.native_id is None:
        return 0.0
    try:
        stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def server_cpu(handle: Any) -> float:
    """CPU seconds of the server's own threads: its event loop, its bridge, the override watch."""
    server = handle.server
    threads = [handle._thread, server._subscription._thread, server.session.override_feed._thread]
    return sum(thread_cpu(thread) for thread in threads)


def timed_run(audio: Path, options: Any, models: Any, clients: int, max_seconds: float) -> dict[str, Any]:
    """Process ``audio`` in a fresh directory, served to ``clients`` clients when non-zero."""
    import livereview
    from livereview.stages.pipeline import run_pipeline

    with tempfile.TemporaryDirectory() as out:
        session = livereview.Session.create(audio, out_dir=out, options=options)
        handle = livereview.serve(session, port=0) if clients else None
        group = Clients(handle.url, clients, max_seconds) if handle else None
        cpu, wall = time.process_time(), time.perf_counter()
        run_pipeline(session, progress=False, models=models)
        result = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "events": session.events.seq}
        if group is not None and handle is not None:
            result["clients"] = group.collect(max_seconds + 60)
            result["server_cpu"] = server_cpu(handle)
            result["server"] = handle.stats()
            handle.stop()
        session.close()
    return result


def stream_phase(audio: Path, options: Any, clients: int, seconds: float, count: int, rate: float) -> dict[str, Any]:
    """Emit ``count`` events at ``rate`` per second (0: as fast as possible), for at most ``seconds``."""
    import livereview

    with tempfile.TemporaryDirectory() as out:
        session = livereview.Session.create(audio, out_dir=out, options=options)
        with livereview.serve(session, port=0) as handle:
            group = Clients(handle.url, clients, seconds + 60)
            started, started_wall, cpu = time.perf_counter(), time.time(), server_cpu(handle)
            emitted = 0
            while emitted < count - 1 and time.perf_counter() - started < seconds:
                session.events.emit("stage_started", stage="bench", data={"pad": "x" * EVENT_PAD})
                emitted += 1
                if rate:
                    time.sleep(max(started + emitted / rate - time.perf_counter(), 0.0))
                elif emitted % 500 == 0:
                    time.sleep(0.001)  # let the server's threads take the GIL now and then
            emit_seconds = time.perf_counter() - started
            # A client that fell behind may miss an end marker (it resyncs past it): repeat it until all left.
            while handle.stats()["clients_connected"] and time.perf_counter() - started < seconds + 60:
                session.events.emit("stage_started", stage="bench", data={"bench_end": True})
                emitted += 1
                time.sleep(0.25)
            result = group.collect(seconds + 120)
            received_by = max(c.get("last", started_wall) for c in result["clients"])
            result |= {
                "emitted": emitted,
                "emit_seconds": emit_seconds,
                "deliver_seconds": max(received_by - started_wall, 1e-9),
                "server_cpu": server_cpu(handle) - cpu,
            }
        session.close()
    return result


def report_stream(name: str, result: dict[str, Any]) -> None:
    clients = result["clients"]
    delivered = sum(c["messages"] for c in clients)
    dropped = sum(c["dropped"] for c in clients)
    resyncs = sum(max(c.get("snapshot", 0) - 1, 0) for c in clients)
    complete = sum(1 for c in clients if not c["timed_out"])
    by_transport = {
        transport: sum(c["messages"] for c in clients if c["transport"] == transport) for transport in ("ws", "sse")
    }
    print(
        f"{name}: {result['emitted']} events in {result['emit_seconds']:.1f} s "
        f"({result['emitted'] / result['emit_seconds']:.0f}/s) to {len(clients)} clients: "
        f"{delivered} delivered in {result['deliver_seconds']:.1f} s = "
        f"{delivered / result['deliver_seconds']:.0f} events/s (ws {by_transport['ws']}, "
        f"sse {by_transport['sse']}); dropped {dropped} "
        f"({dropped / max(result['emitted'] * len(clients), 1):.1%}), resyncs {resyncs}, "
        f"clients to the end {complete}/{len(clients)}, server threads {result['server_cpu']:.1f} cpu-s"
    )


def _walls(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{run['wall']:.1f}" for run in runs)


def main() -> None:
    import livereview
    from livereview.demo import demo_audio_path, pyannote_sample_paths
    from livereview.stages.pipeline import Models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients, half WebSocket, half SSE")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the steady and burst phases (at most)")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second of the steady phase")
    parser.add_argument("--burst", type=int, default=5000, help="events of the burst phase")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="longest a served pipeline run may take")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of pipeline runs (without and with clients)")
    parser.add_argument("--demo", action="store_true", help="the 3 min demo recording instead of the 30 s sample")
    args = parser.parse_args()

    audio = demo_audio_path() if args.demo else pyannote_sample_paths()["audio"]
    options = livereview.RunOptions(
        transcribe=livereview.TranscribeOptions(language="en"),
        diarize=livereview.DiarizeOptions(num_speakers=4 if args.demo else 2),
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"recording: {audio.name}; {args.clients} clients ({args.clients - args.clients // 2} WebSocket)")
    started = time.perf_counter()
    models = Models.load(options)
    print(f"models loaded in {time.perf_counter() - started:.1f} s")

    bare, served = [], []
    for repeat in range(args.repeats):
        order = (0, args.clients) if repeat % 2 == 0 else (args.clients, 0)
        for clients in order:
            result = timed_run(audio, options, models, clients, args.max_seconds)
            (served if clients else bare).append(result)
    bare_wall = min(r["wall"] for r in bare)  # the least disturbed run of each kind
    served_wall = min(r["wall"] for r in served)
    pipeline_cpu = statistics.median(r["cpu"] - r["server_cpu"] for r in served)
    own_cpu = statistics.median(r["server_cpu"] for r in served)
    last = served[-1]
    clients = last["clients"]["clients"]
    complete = sum(1 for c in clients if c.get("summary", 0) >= 1 and not c["timed_out"])
    print(f"pipeline without clients: best wall {bare_wall:.1f} s (runs: {_walls(bare)})")
    print(f"pipeline with clients:    best wall {served_wall:.1f} s (runs: {_walls(served)})")
    print(f"slowdown, best wall clock: {served_wall / bare_wall - 1:+.1%} (noisy on a shared machine)")
    print(
        f"server threads: {own_cpu:.2f} cpu-s beside the pipeline's {pipeline_cpu:.1f} cpu-s "
        f"= {own_cpu / pipeline_cpu:.2%} (target: under 5%)"
    )
    print(
        f"clients that saw the whole run: {complete}/{len(clients)}; {last['events']} events, "
        f"{sum(c['messages'] for c in clients)} messages delivered, "
        f"{sum(c['dropped'] for c in clients)} dropped; client process {last['clients']['cpu_seconds']:.1f} cpu-s"
    )
    steady_count = int(args.rate * args.duration)
    report_stream("steady", stream_phase(audio, options, args.clients, args.duration, steady_count, args.rate))
    report_stream("burst", stream_phase(audio, options, args.clients, args.duration, args.burst, 0.0))


if __name__ == "__main__":
    main()

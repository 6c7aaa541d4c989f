"""API load benchmark: pollers and SSE streams against one busy job.

A real server runs in its own process with a stand-in extract stage that writes 50
progress events per second (each stamped with its wall time). Meanwhile 100 clients poll
the job's progress for 20 s (each every 100 ms: 1,000 requests/s offered) and 20 clients
hold its SSE stream. Prints requests/s, poll
latency p50/p99, errors, the server's peak RSS and the delay from a stage writing a line
to an SSE client receiving it. Targets (2 cores): p99 poll < 50 ms, no errors, SSE delay
p99 < 500 ms, server RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def poller(
    session, url: str, until: float, interval: float, latencies: list[float], errors: list[str]
):
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            async with session.get(url) as resp:
                await resp.read()
                if resp.status != 200:
                    errors.append(f"status {resp.status}")
        except aiohttp.ClientError as exc:
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - start)))


async def sse_client(session, url: str, until: float, delays: list[float], errors: list[str]):
    connected = time.time()
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            event, data = None, None
            async for raw in resp.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif not line and event == "progress" and data:
                    stamp = (json.loads(data).get("extra") or {}).get("emitted_at")
                    if stamp and stamp > connected:  # not the replayed backlog
                        delays.append(time.time() - stamp)
                    event, data = None, None
                if time.monotonic() > until:
                    return
    except aiohttp.ClientError as exc:
        errors.append(repr(exc))


async def sample_rss(pid: int, until: float, peak: list[int]) -> None:
    proc = psutil.Process(pid)
    while time.monotonic() < until:
        peak[0] = max(peak[0], proc.memory_info().rss)
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, base: str, server_pid: int) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        for _ in range(100):
            try:
                async with session.get("/health") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        payload = {"source": "synthetic", "train_size": 10, "val_size": 2, "output_name": "load"}
        async with session.post("/training/datasets/extract", json=payload) as resp:
            started = await resp.json()
            if resp.status != 202:
                sys.exit(f"could not start the job: {started}")
        job = started["job_id"]
        await asyncio.sleep(1.0)
        until = time.monotonic() + args.seconds
        latencies: list[float] = []
        delays: list[float] = []
        errors: list[str] = []
        peak = [0]
        tasks = [
            poller(
                session, f"/training/jobs/{job}/progress", until, args.interval, latencies, errors
            )
            for _ in range(args.pollers)
        ]
        tasks += [
            sse_client(session, f"/training/jobs/{job}/events", until, delays, errors)
            for _ in range(args.streams)
        ]
        tasks.append(sample_rss(server_pid, until, peak))
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
        async with session.post(f"/training/jobs/{job}/cancel") as resp:
            await resp.read()
    live = delays
    print(f"poll requests:       {len(latencies)} in {elapsed:.1f} s")
    print(f"requests/s:          {len(latencies) / elapsed:.0f}")
    print(f"poll latency p50:    {percentile(latencies, 0.5) * 1000:.1f} ms")
    print(f"poll latency p99:    {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"errors:              {len(errors)}{' ' + errors[0] if errors else ''}")
    print(f"SSE events received: {len(live)} on {args.streams} streams")
    print(f"SSE delay p50:       {percentile(live, 0.5) * 1000:.1f} ms")
    print(f"SSE delay p99:       {percentile(live, 0.99) * 1000:.1f} ms")
    if live:
        print(f"SSE delay mean:      {statistics.mean(live) * 1000:.1f} ms")
    print(f"server peak RSS:     {peak[0] / 2**20:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between one client's polls"
    )
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as var:
        env = dict(os.environ, FAKE_RATE=str(args.rate), FAKE_SECONDS=str(args.seconds + 30))
        server = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(port), "--var", var,
             "--stages-package", "tests.fake_stages"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            asyncio.run(run(args, f"http://127.0.0.1:{port}", server.pid))
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()

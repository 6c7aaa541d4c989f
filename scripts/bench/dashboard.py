"""Dashboard benchmark: the datasets page's first paint over a full store, and the server's
poll latency while 20 live SSE streams are open.

1. A store of 100 datasets (manifests with counts and stage states) and 1,000 finished
   jobs (10 per dataset, every kind) is written, then a real server serves it. Debian's
   chromium (Playwright, headless) opens the dashboard in a fresh context five times and
   measures from navigation start to the first contentful paint and to the datasets table
   holding all 100 rows (what a person waits for). Target: the table < 1 s.
2. Four stand-in extract jobs each write 20 progress events/s; 20 SSE clients (five per job,
   as four browser tabs of the jobs page would hold) stream them while 50 clients poll a
   job's progress every 100 ms and 5 more poll the two listings the dashboard refreshes
   (`/training/jobs?limit=100`, `/training/datasets`) every 500 ms, for 20 s. Prints poll
   latency p50/p99 (target p99 <= 50 ms) as scripts/bench/api_load.py measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.api_load import free_port, percentile, poller, sse_client  # noqa: E402
from server.jobs.store import Job, JobStore  # noqa: E402
from stages.dataset.manifest import new_manifest, write_manifest  # noqa: E402

KINDS = ("extract", "render", "convert", "validate", "training_test", "training",
         "evaluation", "render", "training", "export")  # fmt: skip
STAGES = ("extraction", "rendering", "conversion", "validation")


async def fill_store(var: Path, datasets: int, jobs_per: int) -> None:
    root = var / "data" / "training"
    for i in range(datasets):
        name = f"bench_{i:03d}"
        (root / name).mkdir(parents=True)
        manifest = new_manifest(
            name,
            source={"kind": "synthetic", "root": None},
            counts={"models": 1100, "train": 1000, "val": 100, "images": 3300,
                    "conversations": {"train": 3000, "val": 300}, "bytes": 150 * 2**20,
                    "skipped": {"open_loop": 3}, "replaced": 3},
        )  # fmt: skip
        manifest["stages"].update(dict.fromkeys(STAGES, "completed"))
        write_manifest(root / name, manifest)
    store = await JobStore.open(var / "jobs.sqlite3")
    now = time.time() - datasets * jobs_per * 60
    n = 0
    for i in range(datasets):
        for j in range(jobs_per):
            n += 1
            kind = KINDS[j % len(KINDS)]
            job = Job(id=f"{kind}_{n:06d}", kind=kind, status="queued", dataset=f"bench_{i:03d}",
                      slot="cpu", argv=[], params={}, created_at=now + n * 60)  # fmt: skip
            await store.create_job(job)
            await store.update_job(
                job.id,
                status="completed",
                started_at=job.created_at + 1,
                finished_at=job.created_at + 50,
                progress={"current": 100, "total": 100},
                result={"ok": True},
            )
            await store.release(job.dataset, job.id)
    await store.close()


def start(var: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "server", "--port", str(port), "--var", str(var), *extra]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


async def healthy(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(base + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    sys.exit("the server did not start")


def first_paint(base: str, runs: int, datasets: int) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("DASHBOARD_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("no chromium (make setup installs it)")
    fcp, table = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.goto(base + "/")
            page.locator(f"#datasets-table tbody tr:nth-child({datasets})").wait_for()
            rows_at = page.evaluate("performance.now()")
            paint = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
            )
            fcp.append(paint or float("nan"))
            table.append(rows_at)
            context.close()
        browser.close()
    print(f"datasets page, {datasets} datasets, 1,000 jobs ({runs} cold loads):")
    print(
        f"  first contentful paint  median {statistics.median(fcp):.0f} ms, max {max(fcp):.0f} ms"
    )
    print(f"  table with every row    median {statistics.median(table):.0f} ms, "
          f"max {max(table):.0f} ms (target < 1000 ms)")  # fmt: skip


async def live_load(base: str, seconds: float) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        jobs = []
        for i in range(4):
            body = {"source": "synthetic", "train_size": 10, "val_size": 2,
                    "output_name": f"live_{i}"}  # fmt: skip
            async with session.post("/training/datasets/extract", json=body) as resp:
                started = await resp.json()
                if resp.status != 202:
                    sys.exit(f"could not start a job: {started}")
                jobs.append(started["job_id"])
        await asyncio.sleep(1.0)
        until = time.monotonic() + seconds
        latencies: list[float] = []
        listing: list[float] = []
        delays: list[float] = []
        errors: list[str] = []
        tasks = [sse_client(session, f"/training/jobs/{jobs[i % 4]}/events", until, delays, errors)
                 for i in range(20)]  # fmt: skip
        tasks += [poller(session, f"/training/jobs/{jobs[0]}/progress", until, 0.1, latencies,
                         errors) for _ in range(50)]  # fmt: skip
        listings = ("/training/jobs?limit=100", "/training/datasets") * 3
        tasks += [poller(session, path, until, 0.5, listing, errors)
                  for path in listings[:5]]  # fmt: skip
        t0 = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
        for job in jobs:
            async with session.post(f"/training/jobs/{job}/cancel") as resp:
                await resp.read()
    print(f"20 SSE streams on 4 live jobs (80 events/s written), {elapsed:.0f} s:")
    print(f"  progress polls   {len(latencies)}: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms (target <= 50 ms)")  # fmt: skip
    print(f"  listing polls    {len(listing)}: p50 {percentile(listing, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(listing, 0.99) * 1000:.1f} ms")  # fmt: skip
    print(f"  SSE delay        p99 {percentile(delays, 0.99) * 1000:.1f} ms over {len(delays)} "
          f"events; errors {len(errors)}{' ' + errors[0] if errors else ''}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--jobs-per-dataset", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp) / "var"
        asyncio.run(fill_store(var, args.datasets, args.jobs_per_dataset))
        port = free_port()
        server = start(var, port)
        try:
            asyncio.run(healthy(f"http://127.0.0.1:{port}"))
            first_paint(f"http://127.0.0.1:{port}", args.runs, args.datasets)
        finally:
            server.terminate()
            server.wait(30)
        live_var = Path(tmp) / "live"
        port = free_port()
        env = {"FAKE_RATE": "20", "FAKE_SECONDS": str(args.seconds + 30)}
        server = start(live_var, port, "--stages-package", "tests.fake_stages", "--cpu-slots", "4",
                       env=env)  # fmt: skip
        try:
            asyncio.run(healthy(f"http://127.0.0.1:{port}"))
            asyncio.run(live_load(f"http://127.0.0.1:{port}", args.seconds))
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()

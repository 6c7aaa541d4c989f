"""The job system against a real server and real stage subprocesses (fake stages)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from server.app import create_app
from server.appkeys import CONFIG, RUNNER, STORE
from server.jobs import runner as runner_module
from tests.server.conftest import make_config, pid_alive, submit_fake, wait_for_status


async def test_job_completes_with_progress_stats_and_result(client):
    job_id = await submit_fake(client, "--items", "12")
    body = await wait_for_status(client, job_id, ("completed", "failed"))
    assert body["status"] == "completed", body
    assert body["progress"]["current"] == body["progress"]["total"] == 12
    assert body["progress"]["percentage"] == 100.0
    assert body["progress"]["images_rendered"] == 12
    assert body["stats"] == {"succeeded": 12, "failed": 0, "warnings": 2}
    assert body["result"] == {"items": 12, "behaviour": "ok"}
    events = await client.app[STORE].events_after(job_id)
    names = [e[1] for e in events]
    assert names[0] == "status" and names[-1] == "status"
    assert "start" in names and "result" in names and "done" in names
    assert [e[0] for e in events] == list(range(1, len(events) + 1))


async def test_nonzero_exit_fails_with_stderr_tail(client):
    job_id = await submit_fake(client, "--behaviour", "crash", "--items", "10")
    body = await wait_for_status(client, job_id, ("completed", "failed"))
    assert body["status"] == "failed"
    assert "code 3" in body["error"] and "something broke in item 2" in body["error"]


async def test_lines_that_are_not_json_become_warnings(client):
    job_id = await submit_fake(client, "--behaviour", "noisy", "--items", "6")
    body = await wait_for_status(client, job_id, ("completed", "failed"))
    assert body["status"] == "completed"
    warnings = await client.app[STORE].events_after(job_id, event="warning")
    unparseable = [w for w in warnings if "unparseable" in w[2]["message"]]
    assert len(unparseable) == 6  # 3 rounds of two bad lines


async def test_stage_that_dies_without_done_fails(client):
    job_id = await submit_fake(client, "--behaviour", "vanish", "--items", "10")
    body = await wait_for_status(client, job_id, ("completed", "failed"))
    assert body["status"] == "failed"
    assert "without finishing" in body["error"]


async def _start_forever(
    client, tmp_path: Path, behaviour: str = "forever", *extra: str
) -> tuple[str, int, int]:
    pidfile = tmp_path / f"{behaviour}.pid"
    job_id = await submit_fake(
        client,
        *("--behaviour", behaviour, "--delay", "0.05", "--pidfile", str(pidfile), "--child"),
        *extra,
    )
    await wait_for_status(client, job_id, ("running",))
    for _ in range(200):
        if Path(f"{pidfile}.child").exists() and Path(f"{pidfile}.child").read_text():
            break
        await asyncio.sleep(0.05)
    return job_id, int(pidfile.read_text()), int(Path(f"{pidfile}.child").read_text())


async def test_cancel_terminates_the_whole_process_group(client, tmp_path):
    job_id, pid, child = await _start_forever(client, tmp_path)
    resp = await client.post(f"/training/jobs/{job_id}/cancel")
    assert resp.status == 202
    body = await wait_for_status(client, job_id, ("cancelled",))
    assert body["status"] == "cancelled"
    assert not pid_alive(pid) and not pid_alive(child)
    again = await client.post(f"/training/jobs/{job_id}/cancel")
    assert again.status == 409
    assert again.content_type == "application/problem+json"


async def test_cancel_sends_sigterm_then_sigkill_after_the_grace(
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage that survives SIGTERM is killed, and only once the grace has passed: the stage
    itself records the SIGTERM it trapped, and the runner's signals to its live process group
    come as SIGTERM, then SIGKILL no sooner than the grace later."""
    grace = 1.0
    client = await aiohttp_client(create_app(make_config(tmp_path / "var", kill_grace_s=grace)))
    sent: list[tuple[int, float]] = []  # (signal, when) of each signal sent to a live group
    real_signal_group = runner_module.signal_group

    def recording(pgid: int, sig: int = signal.SIGKILL) -> None:
        if pid_alive(pgid):  # not the clean-up of stragglers after the stage has exited
            sent.append((sig, time.monotonic()))
        real_signal_group(pgid, sig)

    monkeypatch.setattr(runner_module, "signal_group", recording)
    marker = tmp_path / "sigterm"
    job_id, pid, child = await _start_forever(client, tmp_path, "stubborn", "--marker", str(marker))
    assert (await client.post(f"/training/jobs/{job_id}/cancel")).status == 202
    await wait_for_status(client, job_id, ("cancelled",), timeout=30)
    assert marker.read_text() == str(pid)  # SIGTERM reached the stage, which carried on
    assert [sig for sig, _ in sent] == [signal.SIGTERM, signal.SIGKILL]
    assert sent[1][1] - sent[0][1] >= grace - 0.01
    assert not pid_alive(pid) and not pid_alive(child)
    done = await client.app[STORE].events_after(job_id, event="done")
    assert done == []  # it never ended on its own: the SIGKILL ended it


async def test_jobs_queue_when_slots_are_full(client, tmp_path):
    first, _, _ = await _start_forever(client, tmp_path)
    second = await submit_fake(client, "--items", "3")
    body = await wait_for_status(client, second, ("queued",))
    assert body["status"] == "queued"
    listing = await (await client.get("/training/jobs?status=queued")).json()
    assert [j["job_id"] for j in listing["jobs"]] == [second]
    await client.post(f"/training/jobs/{first}/cancel")
    body = await wait_for_status(client, second, ("completed",))
    assert body["status"] == "completed"


async def test_cancel_a_queued_job(client, tmp_path):
    first, _, _ = await _start_forever(client, tmp_path)
    second = await submit_fake(client, "--items", "3")
    resp = await client.post(f"/training/jobs/{second}/cancel")
    assert (await resp.json())["status"] == "cancelled"
    await client.post(f"/training/jobs/{first}/cancel")
    await wait_for_status(client, first, ("cancelled",))
    assert (await wait_for_status(client, second, ("cancelled",)))["status"] == "cancelled"


async def test_a_training_job_waits_for_the_gpu_slot_while_cpu_jobs_run(client):
    """One GPU slot: a second training-kind job stays queued until the first ends, and a CPU
    job is not held up behind them (its own slot)."""
    assert client.app[CONFIG].gpu_slots == 1
    first = await submit_fake(
        client, "--behaviour", "forever", "--delay", "0.05", slot="gpu", kind="training"
    )
    await wait_for_status(client, first, ("running",))
    second = await submit_fake(client, "--items", "3", slot="gpu", kind="training")
    cpu = await submit_fake(client, "--items", "3")
    assert (await wait_for_status(client, cpu, ("completed",)))["status"] == "completed"
    assert (await wait_for_status(client, second, ("queued",)))["status"] == "queued"
    assert (await client.post(f"/training/jobs/{first}/cancel")).status == 202
    assert (await wait_for_status(client, second, ("completed",)))["status"] == "completed"
    store = client.app[STORE]
    ended, started = await store.get_job(first), await store.get_job(second)
    assert started.attempts == 1 and started.started_at >= ended.finished_at


async def _read_sse(client, job_id: str, last_event_id: str | None = None) -> list[tuple]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    resp = await client.get(f"/training/jobs/{job_id}/events", headers=headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events, current = [], {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if current.get("event"):
                events.append((current.get("id"), current["event"], json.loads(current["data"])))
            if current.get("event") == "end":
                break
            current = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            current[key] = value.lstrip(" ")
    return events


async def test_sse_live_then_replay_from_last_event_id(client):
    job_id = await submit_fake(client, "--items", "40", "--delay", "0.02")
    live = await _read_sse(client, job_id)  # connects while the job runs
    assert live[-1][1] == "end" and live[-1][2]["status"] == "completed"
    ids = [int(e[0]) for e in live if e[0]]
    assert ids == list(range(1, len(ids) + 1)), "no event lost or duplicated"
    stored = await client.app[STORE].events_after(job_id)
    assert len(stored) == len(ids)
    middle = ids[len(ids) // 2]
    replay = await _read_sse(client, job_id, str(middle))
    assert [int(e[0]) for e in replay if e[0]] == [i for i in ids if i > middle]
    assert replay[-1][1] == "end"


async def test_an_idle_event_stream_sends_heartbeats(client):
    """A job that prints nothing for a long while still sends bytes down its stream (the
    configured heartbeat, an SSE comment), so proxies and browsers keep the stream open."""
    heartbeat = client.app[CONFIG].heartbeat_s
    job_id = await submit_fake(client, "--behaviour", "forever", "--delay", "3600")
    await wait_for_status(client, job_id, ("running",))
    resp = await client.get(f"/training/jobs/{job_id}/events")
    assert resp.status == 200

    async def first_comment() -> bytes:
        async for line in resp.content:
            if line.startswith(b":"):
                return line
        raise AssertionError("the stream ended without a heartbeat")

    # Waits for the bytes; the deadline (many heartbeats long, well below the 15 s default)
    # only turns a missing heartbeat into a failure.
    assert await asyncio.wait_for(first_comment(), 20 * heartbeat) == b": ping\r\n"
    await client.post(f"/training/jobs/{job_id}/cancel")
    await wait_for_status(client, job_id, ("cancelled",))


async def test_log_tail(client):
    job_id = await submit_fake(client, "--behaviour", "crash", "--items", "10")
    await wait_for_status(client, job_id, ("failed",))
    body = await (await client.get(f"/training/jobs/{job_id}/log?tail=1")).json()
    assert body["lines"] == ["something broke in item 2"]
    bad = await client.get(f"/training/jobs/{job_id}/log?tail=zero")
    assert bad.status == 422 and (await bad.json())["field"] == "tail"


async def test_unknown_things_are_problems(client):
    for method, path, status in [
        ("GET", "/nope", 404),
        ("GET", "/training/jobs/missing_123/progress", 404),
        ("DELETE", "/training/jobs", 405),
        ("GET", "/training/jobs?status=bogus", 422),
        ("GET", "/training/jobs?limit=0", 422),
    ]:
        resp = await client.request(method, path)
        assert resp.status == status, path
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["status"] == status and body["title"] and body["detail"]


async def test_runner_marks_dead_servers_running_jobs_interrupted(config, aiohttp_client, tmp_path):
    """The in-process part of restart recovery: a 'running' row whose group is gone."""
    from server.app import create_app

    first = await aiohttp_client(create_app(config))
    job_id, pid, child = await _start_forever(first, tmp_path)
    # Simulate a dead server: forget the live job without stopping its process.
    runner = first.app[RUNNER]
    runner._stopping = True
    live = runner.live.pop(job_id)
    runner.running["cpu"].pop(job_id)
    await first.close()
    assert pid_alive(pid)
    second = await aiohttp_client(create_app(config))
    body = await (await second.get(f"/training/jobs/{job_id}/progress")).json()
    assert body["status"] == "interrupted"
    assert not pid_alive(pid) and not pid_alive(child)
    del live

"""A client that drives the whole pipeline over HTTP, exactly as the spec's frontend does.

Used by ``make demo`` (scripts/demo.py) and by the end-to-end tests. It follows each job's
SSE stream (falling back to polling), survives a server restart (reconnects, finds the job
``interrupted`` and resumes it), and keeps per-stage timings for the summary table.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TERMINAL = ("completed", "failed", "cancelled", "interrupted")


class PipelineError(Exception):
    pass


@dataclass
class StageRecord:
    stage: str
    job_id: str | None
    items: int
    failures: int
    seconds: float
    unit: str

    @property
    def throughput(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class PipelineClient:
    base_url: str
    token: str | None = None
    on_progress: ProgressCallback | None = None
    on_message: Callable[[str], None] = print
    records: list[StageRecord] = field(default_factory=list)
    reconnect_timeout: float = 120.0

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; the body is sent as a string with no headers, like the spec's fetch."""
        deadline = time.monotonic() + self.reconnect_timeout
        while True:
            try:
                async with aiohttp.ClientSession(headers=self._headers()) as session:
                    data = None if body is None else json.dumps(body)
                    async with session.request(method, self.base_url + path, data=data) as resp:
                        text = await resp.text()
                        return resp.status, json.loads(text) if text else None
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)  # the server is restarting

    async def call(self, method: str, path: str, body: Any = None, ok=(200, 202)) -> Any:
        status, data = await self.request(method, path, body)
        if status not in ok:
            detail = data.get("detail") if isinstance(data, dict) else data
            raise PipelineError(f"{method} {path} -> {status}: {detail}")
        return data

    # -- following a job ----
    async def follow(self, job_id: str, label: str) -> dict[str, Any]:
        """Follow a job to its end via SSE; resume it if a server restart interrupted it."""
        while True:
            await self._stream(job_id, label)
            progress = await self.call("GET", f"/training/jobs/{job_id}/progress")
            status = progress["status"]
            if status == "interrupted":
                self.on_message(f"{label}: job {job_id} was interrupted; resuming it")
                await self.call("POST", f"/training/jobs/{job_id}/resume")
                continue
            if status in TERMINAL:
                return progress
            await asyncio.sleep(0.5)

    async def _stream(self, job_id: str, label: str) -> None:
        last_id: str | None = None
        url = f"{self.base_url}/training/jobs/{job_id}/events"
        try:
            async with aiohttp.ClientSession(headers=self._headers()) as session:
                while True:
                    headers = {"Last-Event-ID": last_id} if last_id else {}
                    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
                    async with session.get(url, headers=headers, timeout=timeout) as resp:
                        if resp.status != 200:
                            return
                        event, data, event_id = None, None, None
                        async for raw in resp.content:
                            line = raw.decode().rstrip("\r\n")
                            if line.startswith("event:"):
                                event = line[6:].strip()
                            elif line.startswith("data:"):
                                data = line[5:].strip()
                            elif line.startswith("id:"):
                                event_id = line[3:].strip()
                            elif not line and event:
                                if event == "end":
                                    return
                                if event_id:
                                    last_id = event_id
                                if self.on_progress and data:
                                    self.on_progress(label, {"event": event, **json.loads(data)})
                                event, data, event_id = None, None, None
                    # The stream closed without "end": reconnect and replay from last_id.
        except (TimeoutError, aiohttp.ClientError):
            return  # the server went away; follow() polls and decides

    # -- the spec's frontend workflow ----
    async def run_pipeline(
        self,
        *,
        name: str,
        source: str,
        train_size: int,
        val_size: int,
        views: list[str],
        resolution: int,
        test_run: dict[str, Any],
        training: dict[str, Any] | None,
        train_when: tuple[str, ...] = ("excellent",),
        convert_options: dict[str, Any] | None = None,
        evaluate: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run every stage; the full training starts only when the test-run's convergence
        is one of ``train_when`` (the spec's frontend asks for "excellent"). With
        ``evaluate``, the trained model is then scored on the validation records and asked
        once to reconstruct a validation image."""
        out: dict[str, Any] = {"dataset": name}
        t0 = time.monotonic()
        extract = await self.call(
            "POST",
            "/training/datasets/extract",
            {"source": source, "train_size": train_size, "val_size": val_size, "output_name": name},
        )
        done = await self._finish_stage("extract", extract["job_id"], "models", t0)
        out["extract"] = done

        t0 = time.monotonic()
        render = await self.call(
            "POST",
            f"/training/datasets/{name}/render",
            {"views": views, "resolution": resolution},
        )
        out["render"] = await self._finish_stage("render", render["job_id"], "models", t0)

        t0 = time.monotonic()
        convert = await self.call(
            "POST",
            f"/training/datasets/{name}/convert",
            {"format": "tinyllava", "randomize_templates": True, **(convert_options or {})},
        )
        if convert.get("status") != "completed":
            convert = await self._finish_sync("convert", convert)
        output = convert["output"]
        records = output["train_conversations"] + output["val_conversations"]
        self._record("convert", convert["job_id"], records, 0, t0, "records")
        out["convert"] = convert

        t0 = time.monotonic()
        validate = await self.call("POST", f"/training/datasets/{name}/validate")
        if validate.get("status") != "completed":
            validate = await self._finish_sync("validate", validate)
        checked = validate["stats"].get("train_samples", 0) + validate["stats"].get(
            "val_samples", 0
        )
        self._record("validate", validate["job_id"], checked, len(validate.get("problems", [])), t0,
                     "records")  # fmt: skip
        out["validate"] = validate
        if not validate.get("success"):
            raise PipelineError(f"validation found problems: {validate.get('problems')}")

        t0 = time.monotonic()
        test = await self.call("POST", "/training/test-run", {"dataset": name, **test_run})
        await self.follow(test["job_id"], "test-run")
        results = await self.call("GET", f"/training/test-run/{test['job_id']}/results")
        if results["status"] != "completed":
            raise PipelineError(f"test-run {results['status']}: {results.get('error')}")
        samples = test_run["train_samples"] * test_run["epochs"]
        self._record("test-run", test["job_id"], samples, 0, t0, "samples")
        out["test_run"] = results

        convergence = results["results"]["convergence"]
        if training is not None and convergence in train_when:
            t0 = time.monotonic()
            start = await self.call(
                "POST", "/training/start", {"dataset": name, "config": training}
            )
            await self.follow(start["job_id"], "training")
            status = await self.call("GET", f"/training/{start['job_id']}/status")
            if status["status"] != "completed":
                raise PipelineError(f"training {status['status']}: {status.get('error')}")
            steps = status["progress"]["total_steps"]
            self._record("training", start["job_id"], steps, 0, t0, "steps")
            out["training"] = {**status, "checkpoint_dir": start["checkpoint_dir"]}
        elif training is not None:
            self.on_message(f"convergence is {convergence!r}: full training not started")
        if evaluate is not None and "training" in out:
            out.update(await self._evaluate(name, out["training"]["job_id"], evaluate))
        out["datasets"] = await self.call("GET", "/training/datasets")
        out["status"] = await self.call("GET", f"/training/datasets/{name}/status")
        return out

    async def _evaluate(self, name: str, job_id: str, options: dict[str, Any]) -> dict[str, Any]:
        """Score the trained checkpoint, then reconstruct the first scored record's image."""
        t0 = time.monotonic()
        body = {"dataset": name, "checkpoint": job_id, **options}
        started = await self.call("POST", "/training/evaluate", body)
        await self.follow(started["job_id"], "evaluate")
        evaluation = await self.call("GET", f"/training/evaluations/{started['job_id']}")
        if evaluation["status"] != "completed":
            raise PipelineError(f"evaluation {evaluation['status']}: {evaluation.get('error')}")
        summary = evaluation["summary"]
        invalid = round(summary["count"] * (summary["invalid_ratio"] or 0))
        self._record("evaluate", started["job_id"], summary["count"], invalid, t0, "samples")
        t0 = time.monotonic()
        sample = evaluation["samples"][0]
        image = await self.download(f"/training/datasets/{name}/images/{sample['image']}")
        query = {"checkpoint": job_id}  # the answer budget: the evaluation's, when it set one
        if "max_new_tokens" in options:
            query["max_new_tokens"] = str(options["max_new_tokens"])
        reconstruct = await self.post_image("/inference/reconstruct", image, query)
        self._record("reconstruct", None, 1, 0 if reconstruct["builds"] else 1, t0, "images")
        return {"evaluation": evaluation, "reconstruct": {**reconstruct, "image": sample["image"]}}

    async def download(self, path: str) -> bytes:
        async with (
            aiohttp.ClientSession(headers=self._headers()) as session,
            session.get(self.base_url + path) as resp,
        ):
            if resp.status != 200:
                raise PipelineError(f"GET {path} -> {resp.status}")
            return await resp.read()

    async def post_image(self, path: str, image: bytes, query: dict[str, str]) -> Any:
        """A raw PNG body with the parameters in the query string."""
        headers = {**self._headers(), "Content-Type": "image/png"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.post(self.base_url + path, data=image, params=query) as resp,
        ):
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise PipelineError(f"POST {path} -> {resp.status}: {data.get('detail')}")
            return data

    async def _finish_stage(self, stage: str, job_id: str, unit: str, t0: float) -> dict[str, Any]:
        progress = await self.follow(job_id, stage)
        if progress["status"] != "completed":
            raise PipelineError(f"{stage} {progress['status']}: {progress.get('error')}")
        stats = progress["stats"]
        items = progress["progress"]["total"]
        self._record(stage, job_id, items, stats["failed"], t0, unit)
        return progress

    async def _finish_sync(self, stage: str, answer: dict[str, Any]) -> dict[str, Any]:
        """A convert/validate that outlived the wait limit: follow it, then read its result."""
        if answer.get("success") is False:
            raise PipelineError(f"{stage} failed: {answer.get('error')}")
        progress = await self.follow(answer["job_id"], stage)
        if progress["status"] != "completed":
            raise PipelineError(f"{stage} {progress['status']}: {progress.get('error')}")
        result = progress["result"] or {}
        if stage == "convert":
            return {"success": True, "job_id": answer["job_id"], "status": "completed",
                    "output": result}  # fmt: skip
        return {"success": bool(result.get("valid")), "job_id": answer["job_id"], **result}

    def _record(self, stage, job_id, items, failures, t0, unit) -> None:
        self.records.append(
            StageRecord(stage, job_id, int(items), int(failures), time.monotonic() - t0, unit)
        )

"""Time estimates: what a progress screen reads, measured on this attempt's own work."""

from __future__ import annotations

import io

import pytest

from server.http.jobviews import human_duration, remaining_seconds
from server.jobs.live import LiveJob
from server.jobs.store import Job
from stages.protocol import Reporter
from stages.protocol.events import parse_line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 second"),
        (1.4, "1 second"),
        (2, "2 seconds"),
        (89, "89 seconds"),
        (90, "2 minutes"),
        (60 * 60, "60 minutes"),
        (5400, "1.5 hours"),
        (7200, "2 hours"),
    ],
)
def test_durations_read_as_a_person_writes_them(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_no_estimate_reads_as_none() -> None:
    assert human_duration(None) is None


def running_job(started_at: float) -> LiveJob:
    job = Job("render_1", "render", "running", "d", "cpu", ["render"], {}, started_at=started_at)
    return LiveJob(job=job, seq=0)


def feed(live: LiveJob, reporter_output: io.StringIO) -> None:
    for line in reporter_output.getvalue().splitlines():
        event = parse_line(line)
        assert event is not None
        live.apply(event)


def test_a_resumed_job_estimates_from_the_work_it_really_did() -> None:
    """900 of 1000 models were done before the resume and are skipped in a moment; the
    next 10 took 10 s. Counting the skipped ones as work would promise 1 s for 90 models."""
    out = io.StringIO()
    reporter = Reporter("render", "json", out=out, min_interval=0)
    reporter.start(1000, unit="models")
    for _ in range(900):
        reporter.advance(reused=True)
    for _ in range(10):
        reporter.advance()
    live = running_job(started_at=100.0)
    feed(live, out)
    assert live.job.progress["current"] == 910 and live.job.progress["reused"] == 900
    assert remaining_seconds(live.job, now=110.0) == pytest.approx(90.0)


def test_a_resumed_job_has_no_estimate_until_it_did_new_work() -> None:
    out = io.StringIO()
    reporter = Reporter("train", "json", out=out, min_interval=0)
    reporter.start(100, unit="steps")
    reporter.reused = reporter.current = 40  # resumed at a checkpoint's step
    reporter.progress(force=True)
    live = running_job(started_at=100.0)
    feed(live, out)
    assert remaining_seconds(live.job, now=130.0) is None


def test_a_new_attempt_forgets_the_last_ones_reused_count() -> None:
    live = running_job(started_at=10.0)
    live.job.progress.update(current=50, total=100, reused=50)
    out = io.StringIO()
    reporter = Reporter("render", "json", out=out, min_interval=0)
    reporter.start(100, unit="models")
    reporter.advance()
    feed(live, out)
    assert live.job.progress["reused"] == 0
    assert remaining_seconds(live.job, now=12.0) == pytest.approx(2.0 * 99)

"""Service configuration: every field has a command-line flag and an environment variable."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cpu_count() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    var_dir: Path = Path("var")
    cpu_slots: int = 1
    gpu_slots: int = 1
    cors_origins: tuple[str, ...] = ()
    api_token: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    deepcad_root: Path | None = None
    sync_wait_s: float = 300.0
    kill_grace_s: float = 10.0
    train_kill_grace_s: float = 120.0
    heartbeat_s: float = 15.0
    workers: int = field(default_factory=_cpu_count)
    # The Ray cluster (host:port) that jobs asking for ``"executor": "ray"`` join; None: each
    # such job starts a private Ray instance on this machine.
    ray_address: str | None = None
    # Reconstruction: how many models the inference worker keeps loaded (least recently used
    # go first), and how long one reconstruction may take in it before the worker is killed.
    inference_models: int = 2
    inference_timeout_s: float = 120.0
    # Python package holding the stage modules every job and short call runs; tests point it
    # at fake stages.
    stages_package: str = "stages"

    @property
    def db_path(self) -> Path:
        return self.var_dir / "jobs.sqlite3"

    @property
    def logs_dir(self) -> Path:
        return self.var_dir / "logs"

    @property
    def data_root(self) -> Path:
        return self.var_dir / "data" / "training"

    @property
    def checkpoints_root(self) -> Path:
        return self.var_dir / "checkpoints"

    @property
    def evaluations_dir(self) -> Path:
        """One folder per evaluation job: its scored samples and the generated solids' views."""
        return self.var_dir / "evaluations"

    @property
    def exports_dir(self) -> Path:
        """One folder per export job: the merged model and its archive."""
        return self.var_dir / "exports"

    @property
    def inference_dir(self) -> Path:
        """Scratch folders of reconstructions: the input image, rendered views and meshes."""
        return self.var_dir / "inference"

    @property
    def renders_dir(self) -> Path:
        """Scratch folders of single renders, pairs and inline batch renders."""
        return self.var_dir / "renders"


_ENV = "CADVLM_"


def parse_args(argv: list[str] | None = None) -> Config:
    """Build a Config from flags, falling back to ``CADVLM_*`` environment variables."""
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m server", description="CAD-VLM pipeline service")
    p.add_argument("--host", default=env.get(f"{_ENV}HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=env.get(f"{_ENV}PORT", "8080"))
    p.add_argument("--var", dest="var_dir", default=env.get(f"{_ENV}VAR", "var"))
    p.add_argument("--cpu-slots", type=int, default=env.get(f"{_ENV}CPU_SLOTS", "1"))
    p.add_argument("--gpu-slots", type=int, default=env.get(f"{_ENV}GPU_SLOTS", "1"))
    p.add_argument(
        "--cors-origins",
        default=env.get(f"{_ENV}CORS_ORIGINS", ""),
        help="comma-separated origins allowed to call the API from a browser ('*' for any)",
    )
    p.add_argument("--api-token", default=env.get(f"{_ENV}API_TOKEN") or None)
    p.add_argument("--max-body-mb", type=float, default=env.get(f"{_ENV}MAX_BODY_MB", "16"))
    p.add_argument("--deepcad-root", default=env.get("DEEPCAD_ROOT") or None)
    p.add_argument(
        "--sync-wait",
        type=float,
        default=env.get(f"{_ENV}SYNC_WAIT_S", "300"),
        help="seconds convert/validate requests wait for their job before answering 202",
    )
    p.add_argument(
        "--kill-grace",
        type=float,
        default=env.get(f"{_ENV}KILL_GRACE_S", "10"),
        help="seconds a cancelled stage gets between SIGTERM and SIGKILL",
    )
    p.add_argument(
        "--train-kill-grace",
        type=float,
        default=env.get(f"{_ENV}TRAIN_KILL_GRACE_S", "120"),
        help="the same for training, which saves a checkpoint first",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=env.get(f"{_ENV}HEARTBEAT_S", "15"),
        help="seconds between SSE heartbeats",
    )
    p.add_argument("--workers", type=int, default=env.get(f"{_ENV}WORKERS", _cpu_count()))
    p.add_argument(
        "--ray-address",
        default=env.get(f"{_ENV}RAY_ADDRESS") or None,
        help="the Ray cluster (host:port) that jobs with executor 'ray' join; default: a "
        "private Ray instance per job",
    )
    p.add_argument("--stages-package", default=env.get(f"{_ENV}STAGES_PACKAGE", "stages"))
    p.add_argument(
        "--inference-models",
        type=int,
        default=env.get(f"{_ENV}INFERENCE_MODELS", "2"),
        help="models the inference worker keeps loaded (least recently used are dropped)",
    )
    p.add_argument(
        "--inference-timeout",
        type=float,
        default=env.get(f"{_ENV}INFERENCE_TIMEOUT_S", "120"),
        help="seconds one reconstruction may take before its worker is killed (504)",
    )
    a = p.parse_args(argv)
    if a.cpu_slots < 1 or a.gpu_slots < 1 or a.workers < 1:
        p.error("slots and workers must be at least 1")
    if min(a.kill_grace, a.train_kill_grace, a.heartbeat) <= 0:
        p.error("grace periods and the heartbeat must be positive")
    if a.inference_models < 1 or not a.inference_timeout > 0:
        p.error("--inference-models must be at least 1 and --inference-timeout positive")
    origins = tuple(o.strip() for o in a.cors_origins.split(",") if o.strip())
    return Config(
        host=a.host,
        port=a.port,
        var_dir=Path(a.var_dir),
        cpu_slots=a.cpu_slots,
        gpu_slots=a.gpu_slots,
        cors_origins=origins,
        api_token=a.api_token,
        max_body_bytes=int(a.max_body_mb * 1024 * 1024),
        deepcad_root=Path(a.deepcad_root) if a.deepcad_root else None,
        sync_wait_s=a.sync_wait,
        kill_grace_s=a.kill_grace,
        train_kill_grace_s=a.train_kill_grace,
        heartbeat_s=a.heartbeat,
        workers=a.workers,
        ray_address=a.ray_address,
        stages_package=a.stages_package,
        inference_models=a.inference_models,
        inference_timeout_s=a.inference_timeout,
    )

"""`make demo`: start the service on its embedded defaults and drive the whole pipeline.

Extract a small dataset (synthetic by default, real DeepCAD with DEEPCAD_ROOT), render it,
convert, validate, run the training test and, if its verdict is "excellent" (the spec's
frontend workflow), a LoRA training; then score the trained model on the validation records
and reconstruct one image. All over HTTP with live progress bars from the SSE stream. Prints
a summary table and where the images, records and checkpoints are, then stops the service it
started. What it asks for is in ``scripts/demo_recipe.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.demo_recipe import (  # noqa: E402
    DEMO_DATASET,
    DEMO_EVAL_SAMPLES,
    DEMO_TEST_RUN,
    DEMO_TRAINING,
)
from scripts.pipeline_client import PipelineClient, PipelineError  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bars:
    """One tqdm bar per stage, fed by the SSE events."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, label: str, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self._close(label)
            self.bars[label] = tqdm(
                total=event.get("total") or 0, desc=f"{label:>9}", unit=f" {event.get('unit', '')}",
                dynamic_ncols=True,
            )  # fmt: skip
        bar = self.bars.get(label)
        if bar is None:
            return
        if kind == "progress":
            bar.total = event.get("total") or bar.total
            bar.n = event.get("current", bar.n)
            extra = event.get("extra") or {}
            shown = {k: v for k, v in extra.items() if k in ("images_rendered", "epoch", "step")}
            bar.set_postfix(shown, refresh=False)
            bar.refresh()
        elif kind == "metric" and event.get("train_loss") is not None:
            bar.set_postfix(loss=f"{event['train_loss']:.3f}", refresh=True)
        elif kind == "status" and event.get("status") in ("completed", "failed", "cancelled"):
            self._close(label)

    def _close(self, label: str) -> None:
        bar = self.bars.pop(label, None)
        if bar is not None:
            bar.close()


def start_server(port: int, var: Path, deepcad_root: str | None) -> subprocess.Popen:
    log = open(var / "demo-server.log", "ab")  # noqa: SIM115 (lives as long as the server)
    cmd = [sys.executable, "-m", "server", "--port", str(port), "--var", str(var)]
    if deepcad_root:
        cmd += ["--deepcad-root", deepcad_root]
    return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=log)


def print_summary(client: PipelineClient, out: dict[str, Any], var: Path) -> None:
    print("\nstage      items        failures  time      throughput")
    for r in client.records:
        print(
            f"{r.stage:<10} {r.items:>6} {r.unit:<7} {r.failures:>6}  {r.seconds:7.1f} s "
            f"{r.throughput:8.1f} {r.unit}/s"
        )
    name = out["dataset"]
    data = var / "data" / "training" / name
    test = out["test_run"]["results"]
    print("\ntraining test:")
    for row in test["loss_progression"]:
        val = row.get("val_loss")
        print(f"  epoch {row['epoch']}: train {row['train_loss']:.3f}  val {val:.3f}")
    print(
        f"  improvement {test['total_improvement']:.1f}%, convergence {test['convergence']}, "
        f"overfitting {test['overfitting']}, {test['performance']['throughput']:.1f} samples/s"
    )
    if "training" in out:
        metrics = out["training"]["metrics"]
        print(
            f"training: final loss {metrics['current_loss']:.3f}, "
            f"validation loss {metrics['val_loss']:.3f}"
        )
    if "evaluation" in out:
        print_evaluation(out["evaluation"], out["reconstruct"])
    validation = out["validate"]
    stats = validation["stats"]
    print(
        f"validation: valid={validation['success']}, {stats.get('train_samples')} train and "
        f"{stats.get('val_samples')} val records, images {stats.get('image_resolution')}"
    )
    print("\nwhere things are:")
    print(f"  images       {data / 'images'}")
    print(f"  records      {data / 'train.json'}, {data / 'val.json'}")
    if "training" in out:
        print(f"  checkpoints  {var / out['training']['checkpoint_dir']}")
    print(f"  job store    {var / 'jobs.sqlite3'}")


def print_evaluation(evaluation: dict[str, Any], reconstruct: dict[str, Any]) -> None:
    """The trained model's scores on the validation records, and its one reconstruction."""
    s = evaluation["summary"]

    def stat(metric: str, which: str) -> str:
        value = (s.get(metric) or {}).get(which)
        return "n/a" if value is None else f"{value:.3f}"

    print(
        f"evaluation ({evaluation['checkpoint']['checkpoint']} checkpoint, {s['count']} val "
        f"records): invalid ratio {s['invalid_ratio']:.2f}, parse rate {s['parse_rate']:.2f}, "
        f"IoU mean {stat('iou', 'mean')}, Chamfer x1000 median {stat('chamfer', 'median')}, "
        f"{s['records_per_s']:.2f} records/s"
    )
    solid = reconstruct.get("solid") or {}
    built = f"volume {solid.get('volume_mm3', 0):.1f} mm3" if reconstruct["builds"] else (
        f"not built: {(reconstruct.get('error') or {}).get('reason')}")  # fmt: skip
    print(
        f"reconstruct {reconstruct['image']}: parses {reconstruct['parses']}, builds "
        f"{reconstruct['builds']}, {built}, views {len(reconstruct.get('views') or [])}"
    )


async def drive(args: argparse.Namespace, base_url: str, var: Path) -> int:
    client = PipelineClient(base_url, on_progress=Bars(), on_message=print)
    name = args.name or f"demo_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(2)}"
    source = "deepcad" if args.deepcad_root else "synthetic"
    print(f"dataset {name!r} from the {source} source, {args.train_size}+{args.val_size} models")
    try:
        out = await client.run_pipeline(
            name=name,
            source=source,
            train_size=args.train_size,
            val_size=args.val_size,
            views=DEMO_DATASET["views"],
            resolution=args.resolution,
            test_run={
                **DEMO_TEST_RUN,
                "train_samples": args.test_samples,
                "val_samples": args.test_val_samples,
                "device": "auto",
            },
            training={**DEMO_TRAINING, "epochs": args.epochs, "device": "auto"},
            evaluate={"samples": args.eval_samples, "device": "auto"},
        )
    except PipelineError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print_summary(client, out, var)
    return 0


async def wait_healthy(base_url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit("the service exited during start-up; see var/demo-server.log")
            try:
                async with session.get(base_url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the service did not start in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--var", default="var")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--name")
    parser.add_argument("--deepcad-root", default=os.environ.get("DEEPCAD_ROOT") or None)
    parser.add_argument("--train-size", type=int, default=DEMO_DATASET["train_size"])
    parser.add_argument("--val-size", type=int, default=DEMO_DATASET["val_size"])
    parser.add_argument("--resolution", type=int, default=DEMO_DATASET["resolution"])
    parser.add_argument("--test-samples", type=int, default=DEMO_TEST_RUN["train_samples"])
    parser.add_argument("--test-val-samples", type=int, default=DEMO_TEST_RUN["val_samples"])
    parser.add_argument("--epochs", type=int, default=DEMO_TRAINING["epochs"], help="training")
    parser.add_argument("--eval-samples", type=int, default=DEMO_EVAL_SAMPLES, help="val records")
    args = parser.parse_args()
    var = Path(args.var).resolve()
    var.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start_server(port, var, args.deepcad_root)
    print(f"service started at {base_url} (log: {var / 'demo-server.log'})")
    try:
        asyncio.run(wait_healthy(base_url, server))
        started = time.monotonic()
        code = asyncio.run(drive(args, base_url, var))
        print(f"\ntotal pipeline time: {time.monotonic() - started:.0f} s")
        print(f"dashboard: {base_url}/ (`make serve VAR={var}` shows these results at "
              "http://127.0.0.1:8080/ once the demo's service has stopped)")  # fmt: skip
        return code
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        print("service stopped")


if __name__ == "__main__":
    sys.exit(main())

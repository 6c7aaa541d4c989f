"""A long-lived inference worker: image in, OpenECAD code and its rebuilt solid out.

``python -m stages.train.infer_worker [--models N] [--device auto] [--precision auto]``

The server (``server/inference.py``) keeps one running so that models stay loaded between
requests. Its channel is one JSON object per line (not the stage event protocol):

- after start-up (torch imported, the device chosen) it prints
  ``{"ready": true, "device": ..., "precision": ...}``;
- then, for each request line on stdin::

      {"id", "base_model", "adapter" (or null), "image" (a PNG path), "prompt",
       "max_new_tokens", "views", "resolution", "out_dir"}

  it prints one answer line: ``{"id", "ok": true, "code", "answer", "parses", "builds",
  "error", "solid", "images", "meshes", "stopped", "new_tokens", "model_already_loaded",
  "device", "precision", "timings": {"load_s", "generate_s", "build_s", "render_s",
  "mesh_s"}}``, or ``{"id", "ok": false, "status", "error", "field"?}`` for a request it
  cannot serve (an unknown base model: 422 on ``checkpoint``);
- end of stdin ends it (exit 0).

It keeps at most N models loaded (base model with its adapter merged in), dropping the least
recently used one before loading another. Generated code runs only through the project's
interpreter and solid builder (``stages.train.rebuild``). Standard output is the channel's
alone: whatever a library prints goes to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded

from stages.train.config import DEVICES, PRECISIONS, ConfigError
from stages.train.synthetic import PROMPTS

DEFAULT_MODELS = 2
DEFAULT_PROMPT = PROMPTS[0]  # OpenECAD's own first prompt
IMAGE_LINE = "<image>\n"
CHECKPOINT_FIELD = "checkpoint"
ERROR_CHARS = 500


class RequestError(Exception):
    """A request this worker cannot serve; answered with ``status`` (and ``field``)."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field = status, detail, field


@dataclass
class Loaded:
    bundle: Any
    model: Any


class ModelCache:
    """At most ``capacity`` loaded models, keyed by (base model, adapter); LRU."""

    def __init__(self, capacity: int, runtime: Any) -> None:
        self.capacity = max(1, capacity)
        self.runtime = runtime
        self.models: OrderedDict[tuple[str, str | None], Loaded] = OrderedDict()

    def get(self, base_model: str, adapter: str | None) -> tuple[Loaded, bool]:
        """The model, and whether it was already loaded."""
        key = (base_model, adapter)
        if key in self.models:
            self.models.move_to_end(key)
            return self.models[key], True
        while len(self.models) >= self.capacity:
            self.models.popitem(last=False)
            self._free()
        self.models[key] = self._load(base_model, adapter)
        return self.models[key], False

    def _load(self, base_model: str, adapter: str | None) -> Loaded:
        from stages.train.lora import load_adapter
        from stages.train.models import load_base_model, resolve_base_model

        try:
            ref = resolve_base_model(base_model)
        except ConfigError as exc:
            raise RequestError(422, exc.detail, CHECKPOINT_FIELD) from exc
        if ref.path is None:
            raise RequestError(422, "name a trained checkpoint, not 'tiny'", CHECKPOINT_FIELD)
        if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
            raise RequestError(422, "the adapter holds no adapter_config.json", CHECKPOINT_FIELD)
        try:
            bundle = load_base_model(ref, self.runtime.dtype)
            model = bundle.model
            if adapter is not None:
                model = load_adapter(bundle, Path(adapter)).merge_and_unload()
        except ConfigError as exc:
            raise RequestError(422, exc.detail, CHECKPOINT_FIELD) from exc
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            print(traceback.format_exc(), file=sys.stderr)
            raise RequestError(
                422, f"the checkpoint could not be loaded: {_short(exc)}", CHECKPOINT_FIELD
            ) from exc
        model.to(self.runtime.device).eval()
        return Loaded(bundle, model)

    def _free(self) -> None:
        gc.collect()
        if self.runtime.is_cuda:
            import torch

            torch.cuda.empty_cache()


class Worker:
    """Serves requests one at a time with a model cache and one renderer."""

    def __init__(self, capacity: int, runtime: Any) -> None:
        self.runtime = runtime
        self.cache = ModelCache(capacity, runtime)
        self._renderer: Any = None

    def renderer(self) -> Any:
        if self._renderer is None:
            from stages.render.renderer import OrthoRenderer

            self._renderer = OrthoRenderer()
        return self._renderer

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        from stages.train.rebuild import rebuild

        started = time.perf_counter()
        loaded, warm = self.cache.get(request["base_model"], request.get("adapter"))
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        text, generation = self.generate(loaded, request)
        generate_s = time.perf_counter() - started
        out_dir = Path(request["out_dir"])
        rebuilt = rebuild(text, out_dir, request["views"], request["resolution"], self.renderer)
        timings = {"load_s": round(load_s, 4), "generate_s": round(generate_s, 4)}
        return {
            **rebuilt,
            "answer": text,
            "stopped": generation.stopped,
            "new_tokens": len(generation.token_ids),
            "model_already_loaded": warm,
            "device": str(self.runtime.device),
            "precision": self.runtime.precision,
            "timings": {**timings, **rebuilt["timings"]},
        }

    def generate(self, loaded: Loaded, request: dict[str, Any]) -> tuple[str, Any]:
        import torch
        from PIL import Image

        from stages.train.tinyllava.generate import generate_answer

        human = IMAGE_LINE + (request.get("prompt") or DEFAULT_PROMPT)
        precision: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.runtime.precision != "fp32":
            precision = torch.autocast(self.runtime.device.type, dtype=self.runtime.dtype)
        with Image.open(request["image"]) as image, precision:
            try:
                return generate_answer(
                    loaded.bundle,
                    loaded.model,
                    image,
                    human,
                    int(request["max_new_tokens"]),
                    self.runtime.device,
                )
            except ValueError as exc:  # the prompt leaves no room in the context
                raise RequestError(422, str(exc), "prompt") from exc


def answer_line(worker: Worker, line: str) -> dict[str, Any]:
    """The answer to one request line (never raises for a bad request)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
    except ValueError as exc:
        return {"id": None, "ok": False, "status": 400, "error": f"bad request line: {exc}"}
    answer: dict[str, Any] = {"id": request.get("id")}
    try:
        answer.update(ok=True, **worker.handle(request))
    except RequestError as exc:
        answer.update(ok=False, status=exc.status, error=exc.detail)
        if exc.field:
            answer["field"] = exc.field
    except Exception as exc:  # the request failed here; the worker goes on serving
        print(traceback.format_exc(), file=sys.stderr)
        answer.update(ok=False, status=500, error=f"inference failed: {_short(exc)}")
    return answer


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def _private_stdout() -> IO[str]:
    """The channel: the real stdout, with file descriptor 1 itself pointed at stderr so that
    nothing a library prints can break a line of it."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return channel


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m stages.train.infer_worker",
        description="serve image-to-code reconstructions, one JSON request per stdin line",
    )
    p.add_argument("--models", type=int, default=DEFAULT_MODELS, help="models kept loaded")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    channel = _private_stdout()
    from stages.train.devices import resolve_runtime

    try:
        runtime = resolve_runtime(args.device, args.precision)
    except ConfigError as exc:
        channel.write(json.dumps({"ready": False, "error": str(exc)}) + "\n")
        return 2
    worker = Worker(args.models, runtime)
    ready = {"ready": True, "device": str(runtime.device), "precision": runtime.precision}
    channel.write(json.dumps(ready) + "\n")
    try:
        for line in sys.stdin:
            if line.strip():
                channel.write(json.dumps(answer_line(worker, line)) + "\n")
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

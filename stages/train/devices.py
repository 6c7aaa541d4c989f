"""Which accelerators this machine really has, and which precision each one trains in.

Checked up front because on Linux ``torch.device("mps")`` succeeds and only the first tensor
on it fails: a request for an absent device must be refused before a job starts.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch

from stages.train.config import ConfigError

# CPU and MPS train in fp32; CUDA in bf16 where the card supports it, else fp16 with scaling.
_CPU_PRECISIONS = ("fp32",)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    """Where a run computes and in which precision (``dtype`` of the frozen base weights)."""

    device: torch.device
    precision: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def supported_precisions(device: str) -> list[str]:
    if device == "cuda":
        bf16 = ["bf16"] if torch.cuda.is_bf16_supported() else []
        return [*bf16, "fp16", "fp32"]
    return list(_CPU_PRECISIONS)


def resolve_device(requested: str) -> str:
    """``auto`` picks CUDA, then MPS, then CPU; an absent device is a ConfigError on ``device``."""
    available = available_devices()
    if requested == "auto":
        return "cuda" if "cuda" in available else "mps" if "mps" in available else "cpu"
    if requested not in available:
        raise ConfigError(
            "device",
            f"{requested!r} is not available on this machine; available: {', '.join(available)}",
        )
    return requested


def resolve_runtime(device: str, precision: str) -> Runtime:
    name = resolve_device(device)
    allowed = supported_precisions(name)
    if precision == "auto":
        precision = allowed[0]
    elif precision not in allowed:
        raise ConfigError(
            "precision",
            f"{precision!r} is not supported on {name}; use one of {', '.join(allowed)}",
        )
    return Runtime(torch.device(name), precision)


def device_report() -> dict[str, object]:
    """What ``preflight --devices`` prints: devices, precisions per device, library versions."""
    import peft
    import transformers

    devices = available_devices()
    report: dict[str, object] = {
        "devices": devices,
        "precisions": {d: supported_precisions(d) for d in devices},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }
    if "cuda" in devices:
        report["cuda"] = [
            {
                "index": i,
                "name": torch.cuda.get_device_name(i),
                "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
            }
            for i in range(torch.cuda.device_count())
        ]
    return report

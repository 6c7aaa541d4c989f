"""Does a trained model look at the image? Its answer loss with each record's own image, with
another model's image and with a blank one.

    python scripts/bench/image_reliance.py RUN DATASET [--split val] [--records 24]

RUN is a training run's folder (its ``base_model/`` and ``adapter/``, as the training stage
writes them), DATASET the converted dataset it was trained on. For each of the first
``--records`` records of the split the answer's mean loss (nats per token, the training
loss) is computed three times: with the record's own image, with the image of the next
record that shows another model, and with an all-zero input (the processor's mean colour).
A model that reads the drawing has a clearly lower loss with its own image than with another
model's; equal losses mean it predicts the code from the prompt and the code's own prefix
alone, whatever it is shown. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from stages.train.data import (  # noqa: E402
    IMAGES_DIR,
    Collator,
    VlmDataset,
    encode_records,
    iter_records,
    read_split,
)
from stages.train.devices import resolve_runtime  # noqa: E402
from stages.train.lora import load_adapter  # noqa: E402
from stages.train.loss import batch_loss  # noqa: E402
from stages.train.models import load_base_model, resolve_base_model  # noqa: E402


def model_of(image: Path) -> str:
    """The model a view belongs to: ``00000007_front.png`` -> ``00000007``."""
    return image.stem.rsplit("_", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="val", choices=["train", "val"])
    parser.add_argument("--records", type=int, default=24)
    args = parser.parse_args()

    runtime = resolve_runtime("cpu", "fp32")
    bundle = load_base_model(resolve_base_model(str(args.run / "base_model")), runtime.dtype)
    model = load_adapter(bundle, args.run / "adapter").eval()

    def encode(human: str, answer: str) -> object:
        return bundle.prompt.encode(
            bundle.tokenizer, human, answer, bundle.image_token_id, bundle.num_image_tokens
        )

    records = iter_records(
        read_split(args.dataset, args.split), args.dataset / IMAGES_DIR, lambda *_: None
    )
    examples = encode_records(records, encode, 2048, args.records, lambda *_: None)
    items = VlmDataset(examples, bundle.pixel_values)
    collate = Collator(bundle.tokenizer.pad_token_id)

    def other_model(index: int) -> int:
        for step in range(1, len(examples)):
            other = (index + step) % len(examples)
            if model_of(examples[other].image) != model_of(examples[index].image):
                return other
        raise SystemExit("image_reliance: every record shows the same model")

    losses: dict[str, list[float]] = {"own_image": [], "other_model_image": [], "blank": []}
    with torch.no_grad():
        for index in range(len(examples)):
            batch = collate([items[index]])
            losses["own_image"].append(batch_loss(model, batch, runtime).item())
            batch["pixel_values"] = collate([items[other_model(index)]])["pixel_values"]
            losses["other_model_image"].append(batch_loss(model, batch, runtime).item())
            batch["pixel_values"] = torch.zeros_like(batch["pixel_values"])
            losses["blank"].append(batch_loss(model, batch, runtime).item())
    mean = {name: sum(values) / len(values) for name, values in losses.items()}
    row = {
        "bench": "image_reliance",
        "split": args.split,
        "records": len(examples),
        **{f"{name}_loss": round(value, 4) for name, value in mean.items()},
        "gain_from_own_image": round(mean["other_model_image"] - mean["own_image"], 4),
    }
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

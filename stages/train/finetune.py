"""The LoRA fine-tuning loop: the quick test-run and the full run are this one recipe.

Read top to bottom: ``run_training`` prepares the output directory, data, base model and
adapters, then trains epoch by epoch (AdamW, cosine schedule with warm-up, gradient
accumulation and clipping, autocast on CUDA), emitting a ``metric`` event every ``log_every``
optimizer steps and after every epoch (with the validation loss), checkpointing after every
epoch (and every ``save_every_steps``), and on SIGTERM saving a checkpoint before it stops.
The results are computed from the very epoch records that were emitted as metrics.

Speed on a GPU comes from plain means: fused attention (sdpa), batches padded only to their own
longest sequence (optionally grouped by length) with no attention mask when nothing is padded,
decoder layers compiled with ``torch.compile``, fused AdamW, trainable weights in fp32 over a
bf16/fp16 frozen base, and no host-device sync except when logging.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import get_cosine_schedule_with_warmup

from stages.protocol import CancelFlag, Reporter, StageCancelled
from stages.train.checkpoint import (
    RunLayout,
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_partial,
    save_adapter,
    save_checkpoint,
)
from stages.train.config import (
    ConfigError,
    TrainConfig,
    load_config,
    merge_for_resume,
    save_config,
)
from stages.train.data import (
    Collator,
    DatasetError,
    Example,
    VlmDataset,
    encode_records,
    epoch_batches,
    iter_records,
    read_split,
    record_texts,
)
from stages.train.devices import Runtime, resolve_runtime
from stages.train.lora import attach_lora, trainable_parameters
from stages.train.models import BaseModelRef, VlmBundle, load_base_model, resolve_base_model
from stages.train.plot import draw_loss_curve
from stages.train.prompt import IGNORE_INDEX
from stages.train.summary import summarize
from stages.train.tiny import DEFAULT_IMAGE_SIZE, build_tiny_checkpoint

log = logging.getLogger("stages.train")

# Records whose texts train the tiny model's tokenizer (plenty for a 1k vocabulary).
TOKENIZER_CORPUS_RECORDS = 2000
DEFAULT_GPU_WORKERS = 4


# -- setup ----------------------------------------------------------------------------------------
def continue_or_start(config: TrainConfig, layout: RunLayout) -> TrainConfig:
    """A new run needs an unused directory; ``--resume`` continues the saved run's config
    (only where it runs may change). Writes nothing: the config is saved once training starts."""
    has_run = layout.config_file.is_file() or bool(list_checkpoints(layout))
    if has_run and not config.resume:
        raise ConfigError(
            "output",
            f"{layout.root} already holds a training run: pass --resume to continue it, "
            "or choose a new output directory",
        )
    if layout.config_file.is_file():
        return merge_for_resume(load_config(layout.config_file), config)
    return config


def materialize_base_model(
    ref: BaseModelRef, config: TrainConfig, layout: RunLayout, raw_train: list[Any]
) -> BaseModelRef:
    """The tiny model is built into the run's directory once (and reused on resume), so its
    adapter points at a real checkpoint like any other base model."""
    if ref.kind != "tiny":
        return ref
    if not layout.base_model_dir.is_dir():
        build_tiny_checkpoint(
            layout.base_model_dir,
            record_texts(raw_train, TOKENIZER_CORPUS_RECORDS),
            image_size=config.image_size or DEFAULT_IMAGE_SIZE,
            max_positions=max(config.max_length, 2048),
            seed=config.seed,
        )
    return BaseModelRef(ref.spec, ref.kind, ref.model_type, layout.base_model_dir.resolve())


def build_examples(
    config: TrainConfig,
    bundle: VlmBundle,
    split: str,
    raw: list[Any],
    limit: int | None,
    reporter: Reporter,
) -> list[Example]:
    """The first ``limit`` usable records of a split, encoded; skipped ones are warned about."""

    def encode(human: str, answer: str) -> Any:
        return bundle.prompt.encode(
            bundle.tokenizer, human, answer, bundle.image_token_id, bundle.num_image_tokens
        )

    def skip(item: str, message: str, reason: str) -> None:
        reporter.warning(f"{split}/{item}", message, reason=reason)

    records = iter_records(raw, config.dataset / "images", skip)
    examples = encode_records(records, encode, config.max_length, limit, skip)
    if limit is not None and len(examples) < limit:
        reporter.warning(
            split, f"only {len(examples)} usable records, {limit} asked for", reason="short_split"
        )
    return examples


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute activations in the backward pass (transformers 5 renamed the switch; native
    loaders keep the older name)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def compile_enabled(config: TrainConfig, runtime: Runtime) -> bool:
    return config.compile == "on" or (config.compile == "auto" and runtime.is_cuda)


def compile_decoder(bundle: VlmBundle) -> None:
    """Compile each decoder layer in place (after the adapters are attached): one compiled
    graph serves every layer, so the first compile is short and the loop code is unchanged."""
    for layer in bundle.decoder_layers:
        layer.compile()


def data_workers(config: TrainConfig, runtime: Runtime) -> int:
    """Image decoding in worker processes keeps a GPU fed; on a CPU they would compete with
    the training threads for the same cores."""
    if config.num_workers is not None:
        return config.num_workers
    return DEFAULT_GPU_WORKERS if runtime.is_cuda else 0


# -- one step -------------------------------------------------------------------------------------
def autocast(runtime: Runtime) -> contextlib.AbstractContextManager[Any]:
    if runtime.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=runtime.dtype)


def to_device(batch: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    return {
        key: value.to(runtime.device, non_blocking=True)
        if isinstance(value, torch.Tensor)
        else value
        for key, value in batch.items()
    }


def batch_loss(model: nn.Module, batch: dict[str, Any], runtime: Runtime) -> torch.Tensor:
    """Mean cross-entropy over the batch's answer tokens (the model shifts the labels)."""
    with autocast(runtime):
        output = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
            labels=batch["labels"],
        )
    return output.loss


@dataclass
class Optimization:
    """The objects that change the weights: kept together because they step together."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    params: list[nn.Parameter]
    max_grad_norm: float

    def step(self) -> float:
        """Clip, step, advance the schedule; returns the learning rate this step used."""
        lr = float(self.scheduler.get_last_lr()[0])
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return lr

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()


def build_optimization(
    model: nn.Module, config: TrainConfig, runtime: Runtime, total_steps: int
) -> Optimization:
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=runtime.is_cuda,
    )
    warmup = math.ceil(config.warmup_ratio * total_steps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    scaler = torch.amp.GradScaler("cuda") if runtime.precision == "fp16" else None
    return Optimization(optimizer, scheduler, scaler, params, config.max_grad_norm)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader | Sequence[dict[str, Any]], runtime: Runtime
) -> float | None:
    """Token-weighted mean loss over a whole split (None when it is empty)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in loader:
        batch = to_device(batch, runtime)
        count = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        total += float(batch_loss(model, batch, runtime)) * count
        tokens += count
    model.train(was_training)
    return total / tokens if tokens else None


def make_loader(
    dataset: VlmDataset,
    batches: list[list[int]],
    collator: Collator,
    config: TrainConfig,
    runtime: Runtime,
) -> DataLoader:
    # Its own generator: creating a loader must not draw from the global RNG (dropout's),
    # or a resumed run would see different dropout masks than an uninterrupted one.
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collator,
        num_workers=data_workers(config, runtime),
        pin_memory=runtime.is_cuda,
        generator=torch.Generator(),
    )


# -- metrics -------------------------------------------------------------------------------------
def _gpu_memory(runtime: Runtime) -> dict[str, float]:
    if not runtime.is_cuda:
        return {}
    return {"gpu_mem_gb": round(torch.cuda.max_memory_allocated(runtime.device) / 2**30, 3)}


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def flush_losses(state: TrainerState, pending: torch.Tensor) -> None:
    """Move the losses summed on the device into the state (one host sync)."""
    state.add_loss(float(pending.item()))
    pending.zero_()


def step_metric(state: TrainerState, lr: float, runtime: Runtime) -> dict[str, Any]:
    record = {
        "kind": "step",
        "epoch": state.epoch + 1,
        "step": state.step,
        "train_loss": state.window_loss_sum / max(state.window_batches, 1),
        "lr": lr,
        "samples_per_s": _rate(state.window_samples, state.window_seconds),
        "tokens_per_s": _rate(state.window_tokens, state.window_seconds),
        **_gpu_memory(runtime),
    }
    state.step_losses.append([state.step, record["train_loss"]])
    state.window_loss_sum, state.window_batches = 0.0, 0
    state.window_samples, state.window_tokens, state.window_seconds = 0, 0, 0.0
    return record


def epoch_metric(
    state: TrainerState, lr: float, val_loss: float | None, runtime: Runtime
) -> dict[str, Any]:
    return {
        "kind": "epoch",
        "epoch": state.epoch + 1,
        "step": state.step,
        "train_loss": state.epoch_loss_sum / max(state.epoch_batches, 1),
        "val_loss": val_loss,
        "lr": lr,
        "samples_per_s": _rate(state.epoch_samples, state.epoch_seconds),
        "tokens_per_s": _rate(state.epoch_tokens, state.epoch_seconds),
        **_gpu_memory(runtime),
    }


def start_next_epoch(state: TrainerState) -> None:
    state.epoch += 1
    state.batches_done = 0
    state.epoch_loss_sum, state.epoch_batches = 0.0, 0
    state.epoch_samples, state.epoch_tokens, state.epoch_seconds = 0, 0, 0.0


def report_progress(
    reporter: Reporter, state: TrainerState, config: TrainConfig, total_steps: int, force: bool
) -> None:
    reporter.current = reporter.succeeded = state.step
    reporter.progress(
        force=force,
        epoch=min(state.epoch + 1, config.epochs),
        total_epochs=config.epochs,
        step=state.step,
        total_steps=total_steps,
    )


# -- the run -------------------------------------------------------------------------------------
def run_training(config: TrainConfig, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    """Train as ``config`` says; returns the results object (the stage's ``result`` event)."""
    runtime = resolve_runtime(config.device, config.precision)
    layout = RunLayout(config.output.resolve())
    config = continue_or_start(config, layout)
    raw_train, raw_val = read_split(config.dataset, "train"), read_split(config.dataset, "val")
    ref = resolve_base_model(config.base_model)
    torch.manual_seed(config.seed)
    if runtime.is_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # Base model and data.
    ref = materialize_base_model(ref, config, layout, raw_train)
    bundle = load_base_model(ref, runtime.dtype, config.image_size if ref.kind != "tiny" else None)
    if config.max_length > bundle.max_positions:
        raise ConfigError(
            "max_length", f"the base model holds at most {bundle.max_positions} tokens"
        )
    train_examples = build_examples(
        config, bundle, "train", raw_train, config.train_samples, reporter
    )
    val_examples = build_examples(config, bundle, "val", raw_val, config.val_samples, reporter)
    if not train_examples:
        raise DatasetError("no usable training records (see the warnings)")
    train_set = VlmDataset(train_examples, bundle.pixel_values)
    val_set = VlmDataset(val_examples, bundle.pixel_values)
    lengths = [len(e.input_ids) for e in train_examples]
    collator = Collator(bundle.tokenizer.pad_token_id)
    val_batches = [
        list(range(i, min(i + config.batch_size, len(val_set))))
        for i in range(0, len(val_set), config.batch_size)
    ]
    save_config(config, layout.config_file)
    remove_partial(layout)

    # Adapters, schedule, and where to start.
    model = attach_lora(
        bundle, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_vision
    )
    model.to(runtime.device)
    if config.gradient_checkpointing:
        enable_activation_checkpointing(bundle.model)
    if compile_enabled(config, runtime):
        compile_decoder(bundle)
    batches_per_epoch = math.ceil(len(train_examples) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    optim = build_optimization(model, config, runtime, total_steps)
    state = TrainerState()
    checkpoint = latest_checkpoint(layout)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optim.optimizer, optim.scheduler, optim.scaler)
        log.info("resuming from %s at step %d", checkpoint, state.step)

    def checkpoint_now() -> None:
        save_checkpoint(
            layout, model, optim.optimizer, optim.scheduler, optim.scaler, state, config.keep_last
        )

    reporter.start(total_steps, unit="steps")
    report_progress(reporter, state, config, total_steps, force=True)
    cancel.defer()  # from here a SIGTERM is answered with a checkpoint, between steps
    pending_loss = torch.zeros((), device=runtime.device)
    lr = float(optim.scheduler.get_last_lr()[0])
    model.train()

    while state.epoch < config.epochs:
        batches = epoch_batches(
            lengths, config.batch_size, config.seed, state.epoch, config.group_by_length
        )
        loader = make_loader(train_set, batches[state.batches_done :], collator, config, runtime)
        tick = time.perf_counter()
        for batch in loader:
            batch = to_device(batch, runtime)
            loss = batch_loss(model, batch, runtime)
            optim.backward(loss / config.grad_accum)
            pending_loss += loss.detach()
            state.add_batch(len(batch["input_ids"]), batch["num_tokens"])
            epoch_done = state.batches_done == len(batches)
            if state.batches_done % config.grad_accum and not epoch_done:
                continue

            lr = optim.step()
            state.step += 1
            logging_step = state.step % config.log_every == 0 or epoch_done
            if logging_step:
                flush_losses(state, pending_loss)  # waits for the device: the time is real
            now = time.perf_counter()
            state.add_time(now - tick)
            tick = now
            report_progress(reporter, state, config, total_steps, force=False)
            if logging_step:
                reporter.metric(**step_metric(state, lr, runtime))
            periodic = config.save_every_steps and state.step % config.save_every_steps == 0
            if (periodic or cancel.requested) and not epoch_done:
                flush_losses(state, pending_loss)
                checkpoint_now()
                if cancel.requested:
                    raise StageCancelled()
                tick = time.perf_counter()

        flush_losses(state, pending_loss)
        val_loader = make_loader(val_set, val_batches, collator, config, runtime)
        record = epoch_metric(state, lr, evaluate(model, val_loader, runtime), runtime)
        reporter.metric(**record)
        state.epochs.append(record)
        start_next_epoch(state)
        checkpoint_now()
        draw_loss_curve(state.step_losses, state.epochs, layout.loss_curve)
        report_progress(reporter, state, config, total_steps, force=True)
        if cancel.requested:
            raise StageCancelled()

    # The final adapter, loadable on its own: weights, tokenizer, image processor, config.
    def save_extras(directory: Any) -> None:
        bundle.save_processors(directory)
        save_config(config, directory / "train_config.json")

    save_adapter(layout.adapter_dir, model, save_extras)
    draw_loss_curve(state.step_losses, state.epochs, layout.loss_curve)
    results = {
        **summarize(state.epochs, state.step_losses),
        "performance": {
            "throughput": _rate(state.samples_seen, state.train_seconds),
            "avg_batch_time": round(state.train_seconds / max(state.micro_batches, 1), 4),
        },
        "steps": state.step,
        "total_steps": total_steps,
        "train_samples": len(train_examples),
        "val_samples": len(val_examples),
        "warning_reasons": dict(reporter.skip_reasons),
        "mode": config.mode,
        "device": str(runtime.device),
        "precision": runtime.precision,
        "base_model": ref.describe(),
        "checkpoint_dir": str(layout.root),
        "adapter_dir": str(layout.adapter_dir),
        "loss_curve": str(layout.loss_curve),
    }
    layout.results_file.write_text(json.dumps(results, indent=2) + "\n")
    return results

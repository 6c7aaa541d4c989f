"""The LoRA fine-tuning loop: the quick test-run and the full run are this one recipe.

Read top to bottom: ``run_training`` prepares the output directory, data, base model and
adapters, then trains epoch by epoch (AdamW, cosine schedule with warm-up, gradient
accumulation and clipping, autocast on CUDA), emitting a ``metric`` event every ``log_every``
optimizer steps and after every epoch (with the validation loss), checkpointing after every
epoch (and every ``save_every_steps``), and on SIGTERM saving a checkpoint before it stops.
The results are computed from the very epoch records that were emitted as metrics.

What is not the loop lives beside it, one concern a module: ``optim`` (AdamW, schedule,
clipping), ``loss`` (a batch's loss, a split's validation loss), ``metrics`` (metric events,
progress, throughput), ``data`` (records, batches, DataLoaders), ``checkpoint`` (run files,
trainer state, checkpoints) and ``models`` (base models).

Speed on a GPU comes from plain means: fused attention (sdpa), batches padded only to their own
longest sequence (optionally grouped by length) with no attention mask when nothing is padded,
decoder layers compiled with ``torch.compile``, fused AdamW, trainable weights in fp32 over a
bf16/fp16 frozen base, and no host-device sync except when logging.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn

from stages.dataset.layout import images_dir
from stages.protocol import CancelFlag, Reporter, StageCancelled
from stages.train.bundle import BaseModelRef, VlmBundle
from stages.train.checkpoint import (
    ADAPTER_WEIGHTS,
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
    make_loader,
    ordered_batches,
    read_split,
    record_texts,
)
from stages.train.devices import Runtime, resolve_runtime
from stages.train.distributed import init_ranks, no_sync_unless, wrap_for_ranks
from stages.train.lora import attach_lora
from stages.train.loss import answer_tokens, batch_loss, split_loss_sums, to_device
from stages.train.metrics import (
    epoch_metric,
    flush_losses,
    performance,
    report_progress,
    step_metric,
)
from stages.train.models import load_base_model, resolve_base_model
from stages.train.optim import build_optimization
from stages.train.plot import draw_loss_curve
from stages.train.runs import best_of, checkpoint_infos
from stages.train.self_eval import score_model
from stages.train.summary import summarize
from stages.train.tiny import DEFAULT_IMAGE_SIZE, build_tiny_checkpoint

log = logging.getLogger("stages.train")

# Records whose texts train the tiny model's tokenizer (plenty for a 1k vocabulary).
TOKENIZER_CORPUS_RECORDS = 2000


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

    records = iter_records(raw, images_dir(config.dataset), skip)
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


# -- the run -------------------------------------------------------------------------------------
def run_training(config: TrainConfig, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    """Train as ``config`` says; returns the results object (the stage's ``result`` event)."""
    runtime = resolve_runtime(config.device, config.precision)
    layout = RunLayout(config.output.resolve())
    config = continue_or_start(config, layout)
    ranks, runtime = init_ranks(config.gpus, runtime)
    ranks.barrier()  # every rank has read the directory before rank 0 writes to it
    raw_train, raw_val = read_split(config.dataset, "train"), read_split(config.dataset, "val")
    ref = resolve_base_model(config.base_model)
    torch.manual_seed(config.seed)
    if runtime.is_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # Base model and data.
    if ranks.main:
        materialize_base_model(ref, config, layout, raw_train)
    ranks.barrier()
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
    # Each rank validates every world-th batch; the ranks add their sums up.
    val_batches = ordered_batches(len(val_set), config.batch_size)[ranks.rank :: ranks.world]
    if ranks.main:
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
    # A global batch is batch_size records on each rank.
    global_batch = config.batch_size * ranks.world
    batches_per_epoch = math.ceil(len(train_examples) / global_batch)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation)
    total_steps = steps_per_epoch * config.epochs
    optim = build_optimization(model, config, runtime, total_steps)
    state = TrainerState(world_size=ranks.world)
    checkpoint = latest_checkpoint(layout)
    if checkpoint is not None:  # every rank restores it
        state = load_checkpoint(
            checkpoint, model, optim.optimizer, optim.scheduler, optim.scaler, ranks.rank
        )
        log.info("rank %d resuming from %s at step %d", ranks.rank, checkpoint, state.step)
        if state.world_size != ranks.world:
            raise ConfigError(
                "gpus",
                f"the run was trained by {state.world_size} processes; resume it with as many",
            )
    train_model = wrap_for_ranks(model, ranks, runtime)  # after the load: DDP syncs from rank 0

    def checkpoint_now() -> None:
        rank_rng = ranks.rng_states()  # dropout goes on as it would have, on every rank
        if ranks.main:
            save_checkpoint(
                layout, model, optim.optimizer, optim.scheduler, optim.scaler, state,
                config.keep_last, rank_rng,
            )  # fmt: skip
        ranks.barrier()  # a cancelled rank exits only once the checkpoint is whole

    def flush() -> None:
        ranks.sum_tensor_(pending_loss)  # each rank holds its share of each batch's mean
        flush_losses(state, pending_loss)

    reporter.start(total_steps, unit="steps")
    reporter.reused = state.step  # the steps a resumed run does not repeat
    report_progress(reporter, state, config, total_steps, force=True)
    cancel.defer()  # from here a SIGTERM is answered with a checkpoint, between steps
    pending_loss = torch.zeros((), device=runtime.device)
    lr = optim.last_lr()
    model.train()

    while state.epoch < config.epochs:
        batches = epoch_batches(
            lengths, global_batch, config.seed, state.epoch, config.group_by_length
        )
        order = [i for b in batches for i in b]
        remaining = [ranks.shard(b, order) for b in batches[state.batches_done :]]
        loader = make_loader(train_set, remaining, collator, config.num_workers, runtime)
        tick = time.perf_counter()
        for batch in loader:
            steps_now = (state.batches_done + 1) % config.gradient_accumulation == 0 or (
                state.batches_done + 1 == len(batches)
            )
            samples, tokens = len(batch["input_ids"]), batch["num_tokens"]
            if ranks.many:  # this rank's share of the global batch's mean over its tokens
                total, samples, tokens = ranks.sum_(
                    [answer_tokens(batch), samples, tokens], runtime.device
                )
                share = answer_tokens(batch) / total if total else 1 / ranks.world
                samples, tokens = int(samples), int(tokens)
            batch = to_device(batch, runtime)
            with no_sync_unless(train_model, steps_now):
                loss = batch_loss(train_model, batch, runtime)
                if ranks.many:  # DDP averages over the ranks: the shares add up to the mean
                    loss = loss * share
                    optim.backward(loss * ranks.world / config.gradient_accumulation)
                else:
                    optim.backward(loss / config.gradient_accumulation)
            pending_loss += loss.detach()
            state.add_batch(samples, tokens)
            epoch_done = state.batches_done == len(batches)
            if state.batches_done % config.gradient_accumulation and not epoch_done:
                continue

            lr = optim.step()
            state.step += 1
            logging_step = state.step % config.log_every == 0 or epoch_done
            if logging_step:
                flush()  # waits for the device: the time is real
            now = time.perf_counter()
            state.add_time(now - tick)
            tick = now
            report_progress(reporter, state, config, total_steps, force=False)
            if logging_step:
                reporter.metric(**step_metric(state, lr, runtime))
            periodic = config.save_every_steps and state.step % config.save_every_steps == 0
            # Every rank stops at the same step: a SIGTERM seen by any is seen by all.
            stop = ranks.any_true(cancel.requested, runtime.device)
            if (periodic or stop) and not epoch_done:
                flush()
                checkpoint_now()
                if stop:
                    log.info("rank %d stopped at step %d", ranks.rank, state.step)
                    raise StageCancelled()
                tick = time.perf_counter()

        flush()
        val_loader = make_loader(val_set, val_batches, collator, config.num_workers, runtime)
        val_total, val_tokens = ranks.sum_(
            split_loss_sums(model, val_loader, runtime), runtime.device
        )
        val_loss = val_total / val_tokens if val_tokens else None
        record = epoch_metric(state, lr, val_loss, runtime)
        reporter.metric(**record)
        state.epochs.append(record)
        state.start_next_epoch()
        checkpoint_now()
        if ranks.main:
            draw_loss_curve(state.step_losses, state.epochs, layout.loss_curve)
        every = config.eval_every_epochs
        if ranks.main and every and state.epoch % every == 0 and state.epoch < config.epochs:
            score_model(
                bundle, model, runtime, config, layout, reporter,
                label=f"epoch-{state.epoch}", step=state.step, epoch=state.epoch,
            )  # fmt: skip
        report_progress(reporter, state, config, total_steps, force=True)
        if ranks.any_true(cancel.requested, runtime.device):
            log.info("rank %d stopped at step %d", ranks.rank, state.step)
            raise StageCancelled()

    if not ranks.main:  # rank 0 writes the adapter, evaluates and answers
        return {"rank": ranks.rank, "steps": state.step}

    # The final adapter, loadable on its own: weights, tokenizer, image processor, config.
    def save_extras(directory: Any) -> None:
        bundle.save_processors(directory)
        save_config(config, directory / "train_config.json")

    save_adapter(layout.adapter_dir, model, save_extras)
    draw_loss_curve(state.step_losses, state.epochs, layout.loss_curve)
    best = best_of(checkpoint_infos(layout))
    evaluation = None
    if config.eval_samples:  # the checkpoint a user would pick: the best, not the last
        if best is not None:
            set_peft_model_state_dict(model, load_file(best.path / ADAPTER_WEIGHTS))
        evaluation = score_model(
            bundle, model, runtime, config, layout, reporter,
            label=best.name if best else "final", step=state.step, epoch=state.epoch,
        )  # fmt: skip
    results = {
        **summarize(state.epochs, state.step_losses),
        "performance": performance(state),
        "steps": state.step,
        "total_steps": total_steps,
        "train_samples": len(train_examples),
        "val_samples": len(val_examples),
        "warning_reasons": dict(reporter.skip_reasons),
        "mode": config.mode,
        "device": str(runtime.device),
        "world_size": ranks.world,
        "precision": runtime.precision,
        "base_model": ref.describe(),
        "checkpoint_dir": str(layout.root),
        "adapter_dir": str(layout.adapter_dir),
        "best_checkpoint": best.as_json(best=True) if best else None,
        "evaluation": evaluation,
        "loss_curve": str(layout.loss_curve),
    }
    layout.results_file.write_text(json.dumps(results, indent=2) + "\n")
    return results

"""The collection's launcher as a library: load a LazyConfig, build and train or evaluate its model.

``train_net.py`` (and the ``d2c-train`` command) is a thin script over ``run``, as detectron2's
``tools/lazyconfig_train_net.py``; tools and workflows reuse ``load_config``, ``build_model`` and
``do_test``. Detection models (detectron2 meta-architectures) and classification models
(``projects.common.modeling.ImageClassifier``) go through the same loop: the model returns a dict
of losses in training; ``dataloader.evaluator`` scores its outputs.
"""
import contextlib
import json
import logging
import os
import random
import shutil
import time

import numpy as np
import torch
from omegaconf import OmegaConf

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import (
    AMPTrainer,
    SimpleTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    hooks,
    launch,
)
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm

from .config import apply_overrides, resolve_config_file
from .data import dataset_metadata
from .io import atomic_output, write_bytes_atomically
from .runtime import resolve_device
from .weights import load_trained_weights

__all__ = [
    "GradientAccumulationTrainer",
    "RandomStates",
    "TrainingCheckpointer",
    "build_model",
    "build_trainer",
    "do_test",
    "do_train",
    "load_config",
    "main",
    "parse_args",
    "run",
    "wrap_ddp",
]

logger = logging.getLogger(__name__)

USAGE = """
    d2c-train --config-file configs/smoke/faster_rcnn_R18_FPN_synthetic.py   (or python train_net.py ...)
    d2c-train --config-file smoke/faster_rcnn_R18_FPN_synthetic.py           # a config of the collection by name
    d2c-train --config-file CFG --resume                                     # continue a run
    d2c-train --config-file CFG --eval-only train.init_checkpoint=output/model_final.pth
    d2c-train --config-file CFG --num-gpus 2 train.max_iter=100              # 2 processes

``--num-gpus N`` starts N processes on this machine: one per GPU with NCCL, or N CPU processes
with gloo on a machine without CUDA. Many machines: the same command on each, with
``--num-machines``, ``--machine-rank`` and a shared ``--dist-url``. The device is
``train.device`` ("auto": CUDA when present, else CPU).
"""


class GradientAccumulationTrainer(SimpleTrainer):
    """
    SimpleTrainer whose every iteration (one optimizer step, one LR-schedule step, one tick of
    ``train.max_iter``) accumulates the gradients of ``accumulation_steps`` batches, each loss
    divided by ``accumulation_steps``: the gradient of a batch that many times larger, for
    schedules such as WSDDN's (4 GPUs x 1 image x 32 accumulations) on fewer devices. Losses are
    logged as their mean over the accumulated batches. Under DistributedDataParallel the
    gradients are all-reduced once, at the last batch.
    """

    def __init__(self, model, data_loader, optimizer, accumulation_steps: int):
        super().__init__(model, data_loader, optimizer)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps={accumulation_steps} must be at least 1")
        self.accumulation_steps = accumulation_steps

    def run_step(self):
        assert self.model.training, "[GradientAccumulationTrainer] model was changed to eval mode!"
        self.optimizer.zero_grad()
        data_time = 0.0
        summed = {}
        for step in range(self.accumulation_steps):
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start
            synchronise = step == self.accumulation_steps - 1 or not hasattr(self.model, "no_sync")
            with contextlib.nullcontext() if synchronise else self.model.no_sync():
                loss_dict = self.model(data)
                if isinstance(loss_dict, torch.Tensor):
                    loss_dict = {"total_loss": loss_dict}
                (sum(loss_dict.values()) / self.accumulation_steps).backward()
            for name, value in loss_dict.items():
                summed[name] = summed.get(name, 0.0) + value.detach()
        self._write_metrics({name: value / self.accumulation_steps for name, value in summed.items()}, data_time)
        self.optimizer.step()


class RandomStates:
    """The training process's global RNGs (Python, NumPy, torch, CUDA) as a checkpointable: RPN
    and ROI sampling, dropout and friends draw from them, so a resumed run needs them back to
    repeat the uninterrupted one. Restored on the main process; other processes keep the seeds
    ``default_setup`` gave them (seed + rank)."""

    def state_dict(self):
        kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
        state = {
            "python": random.getstate(),
            # plain types and tensors: checkpoints load with torch.load(weights_only=True)
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state):
        if not comm.is_main_process():
            return
        set_random_states(state)


def set_random_states(state) -> None:
    """Set the global RNGs to a ``RandomStates.state_dict()``."""
    kind, keys, position, has_gauss, cached_gaussian = state["numpy"]
    random.setstate(state["python"])
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def preserved_random_states():
    """The global RNGs are left as they were by whatever runs inside (evaluation during
    training must not change which random draws training makes next)."""
    saved = RandomStates().state_dict()
    try:
        yield
    finally:
        set_random_states(saved)


class TrainingCheckpointer(DetectionCheckpointer):
    """detectron2's checkpointer with files written atomically: a checkpoint and ``last_checkpoint``
    are written to a temporary file and renamed, so a kill or a full disk leaves the previous files
    intact, never a truncated one that ``--resume`` would trip over."""

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        if "://" in self.save_dir:  # remote storage: PathManager's own writing
            return super().save(name, **kwargs)
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        try:
            with atomic_output(save_file) as f:
                torch.save(data, f)
        except (OSError, RuntimeError) as error:  # torch reports a full disk as "unexpected pos"
            free = shutil.disk_usage(self.save_dir).free / 2**30
            raise OSError(
                f"writing the checkpoint {save_file} failed ({type(error).__name__}: {error}); the previous "
                f"checkpoints are intact. {free:.1f} GiB are free in {self.save_dir}: if the disk is full, free "
                "space (or set train.output_dir elsewhere) and continue with --resume"
            ) from error
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        if "://" in self.save_dir:
            return super().tag_last_checkpoint(last_filename_basename)
        write_bytes_atomically(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename.encode())


def _drop_metrics_from(output_dir: str, first_iteration: int) -> None:
    """Cut ``metrics.json`` before its first record of an iteration >= ``first_iteration`` (written
    after the checkpoint a run resumes from: the resumed run writes them again). Records are
    appended in iteration order, so the cut is one ``truncate`` of the same file, which the
    already-open metrics writer keeps appending to."""
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        return
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            try:
                iteration = json.loads(line).get("iteration", -1)
            except ValueError:  # a line cut short by the kill
                break
            if iteration >= first_iteration or not line.endswith(b"\n"):
                break
            offset += len(line)
    if offset < os.path.getsize(path):
        logger.info(f"{path}: the records from iteration {first_iteration} on are replaced by the resumed run")
        os.truncate(path, offset)


def _ensure_final_checkpoint(checkpointer: TrainingCheckpointer, trainer) -> None:
    """After a resume that found the run finished: ``model_final.pth`` must load; rewritten from
    the restored state if it is missing or unreadable."""
    path = os.path.join(checkpointer.save_dir, "model_final.pth")
    try:
        torch.load(path, map_location="cpu", weights_only=False)
        return
    except Exception as error:  # noqa: BLE001 - any unreadable file is rewritten
        logger.warning(f"{path} does not load ({type(error).__name__}: {error}); writing it again")
    checkpointer.save("model_final", iteration=trainer.iter)


def model_num_classes(model):
    """The number of classes a model predicts: the ``num_classes`` its heads agree on (None when
    no module has one, or they disagree)."""
    counts = {m.num_classes for m in model.modules() if isinstance(getattr(m, "num_classes", None), int)}
    return counts.pop() if len(counts) == 1 else None


def _dataset_names(cfg, split: str):
    names = OmegaConf.select(cfg, f"dataloader.{split}.dataset.names", default=None)
    return [names] if isinstance(names, str) else list(names or [])


def check_dataset_classes(cfg, model, split: str) -> None:
    """The ``dataloader.<split>`` datasets must have as many classes as the model predicts: with
    fewer or more, training would learn the extra classes as background or fail with an index
    error deep in a loss; evaluation would score the wrong classes."""
    num_classes = model_num_classes(model)
    if num_classes is None:
        return
    for name in _dataset_names(cfg, split):
        classes = dataset_metadata(name).get("thing_classes")
        if classes is not None and len(classes) != num_classes:
            raise ValueError(
                f"dataset {name!r} (dataloader.{split}) has {len(classes)} classes {list(classes)[:10]} but the "
                f"model predicts {num_classes}: set the model's num_classes to {len(classes)} (e.g. "
                f"model.roi_heads.num_classes={len(classes)} or model.num_classes={len(classes)}), or use a "
                f"dataset with {num_classes} classes"
            )


def warn_if_test_classes_differ(cfg) -> None:
    """Training and test datasets whose class names differ (e.g. the same names in another order)
    make every per-class score of the evaluation wrong: say so with both lists."""
    train_names, test_names = _dataset_names(cfg, "train"), _dataset_names(cfg, "test")
    if not train_names or not test_names:
        return
    train_classes = dataset_metadata(train_names[0]).get("thing_classes")
    test_classes = dataset_metadata(test_names[0]).get("thing_classes")
    if train_classes is not None and test_classes is not None and list(train_classes) != list(test_classes):
        logger.warning(
            f"the test dataset {test_names[0]!r} names its classes {list(test_classes)}, the training dataset "
            f"{train_names[0]!r} {list(train_classes)}: class i of the model is scored as the test set's class i"
        )


def load_config(config_file, overrides=()):
    """Load a LazyConfig, given by path or by its name under ``configs/`` (see
    ``projects.common.config``), and apply ``key=value`` overrides (checked: see
    ``projects.common.config.apply_overrides``); ``train.device`` is resolved."""
    cfg = LazyConfig.load(resolve_config_file(config_file))
    cfg = apply_overrides(cfg, list(overrides))
    cfg.train.device = resolve_device(cfg.train.get("device", "auto"))
    return cfg


def do_test(cfg, model):
    """Evaluate ``model`` on ``dataloader.test`` with ``dataloader.evaluator``; through the
    config's ``test_time_augmentation`` (a LazyCall wrapper taking ``model=``) when it has one."""
    if "evaluator" not in cfg.dataloader:
        return {}
    test_loader = instantiate(cfg.dataloader.test)  # first: it may generate embedded data
    check_dataset_classes(cfg, model, "test")
    warn_if_test_classes_differ(cfg)
    if cfg.get("test_time_augmentation") is not None:
        cfg.test_time_augmentation.model = model
        model = instantiate(cfg.test_time_augmentation)
    results = inference_on_dataset(model, test_loader, instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(results)
    return results


def build_model(cfg):
    """``cfg.model`` instantiated on ``train.device``."""
    model = instantiate(cfg.model)
    model.to(cfg.train.device)
    logger.info("Model:\n%s", model)
    return model


def wrap_ddp(cfg, model):
    """DistributedDataParallel when there is more than one process (a no-op otherwise)."""
    ddp_options = dict(cfg.train.ddp)
    if cfg.train.device == "cpu":
        ddp_options["device_ids"] = None  # gloo on CPU: DDP must not be given a device
    return create_ddp_model(model, **ddp_options)


def build_trainer(cfg):
    """The training loop of detectron2's LazyConfig launcher: hooks for the LR schedule, logging
    (iteration, losses, ETA -> stdout, metrics.json, tensorboard), periodic checkpoints and
    periodic + final evaluation. The checkpointer saves and restores the model together with
    the trainer's iteration, optimizer and scheduler state."""
    if cfg.train.amp.enabled and cfg.train.device == "cpu":
        raise ValueError("train.amp.enabled=True needs CUDA (detectron2's AMPTrainer); "
                         "set train.amp.enabled=False on CPU")
    model = build_model(cfg)
    check_dataset_classes(cfg, model, "train")
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = wrap_ddp(cfg, model)
    accumulation_steps = cfg.train.get("gradient_accumulation_steps", 1)
    if cfg.train.amp.enabled:
        if accumulation_steps != 1:
            raise ValueError("train.gradient_accumulation_steps > 1 is not supported with AMP: "
                             "set train.amp.enabled=False or train.gradient_accumulation_steps=1")
        trainer = AMPTrainer(model, train_loader, optimizer)
    elif accumulation_steps > 1:
        trainer = GradientAccumulationTrainer(model, train_loader, optimizer, accumulation_steps)
    else:
        trainer = SimpleTrainer(model, train_loader, optimizer)
    checkpointables = {"trainer": trainer, "random_states": RandomStates()}
    if hasattr(train_loader, "state_dict"):  # ResumableTrainLoader: its position in the data stream
        checkpointables["train_data"] = train_loader
    checkpointer = TrainingCheckpointer(model, cfg.train.output_dir, **checkpointables)
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if comm.is_main_process()
            else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: _test_during_training(cfg, model)),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if comm.is_main_process()
            else None,
        ]
    )
    return trainer, checkpointer


def _test_during_training(cfg, model):
    with preserved_random_states():
        return do_test(cfg, model)


def do_train(args, cfg):
    """Train from ``train.init_checkpoint``, or with ``--resume`` continue from the last
    checkpoint in ``train.output_dir``: iteration, optimizer, LR schedule, the RNGs and (with a
    ``ResumableTrainLoader``) the data stream's position, so that on one process with a fixed
    ``train.seed`` the resumed run ends with the weights of the uninterrupted one."""
    trainer, checkpointer = build_trainer(cfg)
    resuming = args.resume and checkpointer.has_checkpoint()
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    start_iter = trainer.iter + 1 if resuming else 0
    if resuming and comm.is_main_process():
        _drop_metrics_from(cfg.train.output_dir, start_iter)
    trainer.train(start_iter, cfg.train.max_iter)
    if resuming and start_iter >= cfg.train.max_iter and comm.is_main_process():
        _ensure_final_checkpoint(checkpointer, trainer)
    return trainer


def main(args):
    """One process of the launcher: evaluation results with ``--eval-only``, else train."""
    args.config_file = resolve_config_file(args.config_file)  # default_setup copies the file
    cfg = load_config(args.config_file, args.opts)
    default_setup(cfg, args)
    if args.eval_only:
        model = build_model(cfg)
        load_trained_weights(model, cfg.train.init_checkpoint, allow_partial=args.allow_partial_weights,
                             allow_random=args.allow_random_weights)
        return do_test(cfg, wrap_ddp(cfg, model))
    do_train(args, cfg)
    return None


def parse_args(argv=None):
    """detectron2's launcher options (``--config-file``, ``--resume``, ``--eval-only``,
    ``--num-gpus``, ..., ``key=value`` overrides) and the two that allow incomplete weights."""
    parser = default_argument_parser(epilog=USAGE)
    add_weight_arguments(parser)
    return parser.parse_args(argv)


def add_weight_arguments(parser) -> None:
    """``--allow-partial-weights`` and ``--allow-random-weights`` (see ``load_trained_weights``)."""
    parser.add_argument("--allow-partial-weights", action="store_true",
                        help="evaluate/predict even if the weights leave parameters of the model unloaded")
    parser.add_argument("--allow-random-weights", action="store_true",
                        help="evaluate/predict with the randomly initialised model when no weights are given")


def run(argv=None):
    """The command line: parse ``argv`` and start ``main`` in each process (``--num-gpus``)."""
    args = parse_args(argv)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    run()

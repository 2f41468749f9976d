#!/usr/bin/env python
"""The collection's one launcher: trains and evaluates any LazyConfig of any project.

The config file chooses the project: it imports the project's components, which register
themselves. Detection models (detectron2 meta-architectures) and classification models
(``projects.common.modeling.ImageClassifier``) go through the same loop: the model returns a
dict of losses in training; ``dataloader.evaluator`` scores its outputs.

    python train_net.py --config-file configs/smoke/faster_rcnn_R18_FPN_synthetic.py
    python train_net.py --config-file CFG --resume                       # continue a run
    python train_net.py --config-file CFG --eval-only train.init_checkpoint=output/model_final.pth
    python train_net.py --config-file CFG --num-gpus 2 train.max_iter=100   # 2 processes

``--num-gpus N`` starts N processes on this machine: one per GPU with NCCL, or N CPU processes
with gloo on a machine without CUDA. Many machines: the same command on each, with
``--num-machines``, ``--machine-rank`` and a shared ``--dist-url``. The device is
``train.device`` ("auto": CUDA when present, else CPU).
"""
import logging
import os

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

from projects.common.engine import GradientAccumulationTrainer
from projects.common.runtime import resolve_device

logger = logging.getLogger("train_net")


def load_config(config_file, overrides=()):
    """Load a LazyConfig file and apply ``key=value`` overrides, with clear errors for typos."""
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f"config file {config_file!r} does not exist. Configs live under configs/ "
            "(e.g. configs/smoke/faster_rcnn_R18_FPN_synthetic.py); run "
            "`find configs -name '*.py'` to list them."
        )
    cfg = LazyConfig.load(config_file)
    cfg = LazyConfig.apply_overrides(cfg, list(overrides))
    cfg.train.device = resolve_device(cfg.train.get("device", "auto"))
    return cfg


def do_test(cfg, model):
    """Evaluate ``model`` on ``dataloader.test`` with ``dataloader.evaluator``; through the
    config's ``test_time_augmentation`` (a LazyCall wrapper taking ``model=``) when it has one."""
    if "evaluator" not in cfg.dataloader:
        return {}
    test_loader = instantiate(cfg.dataloader.test)  # first: it may generate embedded data
    if cfg.get("test_time_augmentation") is not None:
        cfg.test_time_augmentation.model = model
        model = instantiate(cfg.test_time_augmentation)
    results = inference_on_dataset(model, test_loader, instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process():
        print_csv_format(results)
    return results


def build_model(cfg):
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
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
            hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer)
            if comm.is_main_process()
            else None,
            hooks.EvalHook(cfg.train.eval_period, lambda: do_test(cfg, model)),
            hooks.PeriodicWriter(
                default_writers(cfg.train.output_dir, cfg.train.max_iter),
                period=cfg.train.log_period,
            )
            if comm.is_main_process()
            else None,
        ]
    )
    return trainer, checkpointer


def do_train(args, cfg):
    """Train from ``train.init_checkpoint``, or with ``--resume`` continue from the last
    checkpoint in ``train.output_dir`` (iteration, optimizer and scheduler included)."""
    trainer, checkpointer = build_trainer(cfg)
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=args.resume)
    start_iter = trainer.iter + 1 if args.resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    return trainer


def main(args):
    cfg = load_config(args.config_file, args.opts)
    default_setup(cfg, args)
    if args.eval_only:
        model = build_model(cfg)
        model = wrap_ddp(cfg, model)
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        return do_test(cfg, model)
    do_train(args, cfg)
    return None


def parse_args(argv=None):
    return default_argument_parser(epilog=__doc__).parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )

"""Every LazyConfig under configs/ loads, its model builds, the CPU-sized detectors train a step
on synthetic data and stay finite in a shortened run, every LR schedule keeps its warm-up in
iterations when ``train.max_iter`` changes, and configs of real datasets fail with an error that
says how to get them."""
import glob
import math
import os

import pytest
import torch

from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import HookBase
from detectron2.utils.events import EventStorage

from projects.common.config import apply_overrides
from projects.common.data import DetectionDatasetMapper
from projects.common.engine import build_trainer, load_config
from projects.common.schedules import warmup_in_iterations

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(
    os.path.relpath(path, REPO)
    for path in glob.glob(os.path.join(REPO, "configs", "**", "*.py"), recursive=True)
)
MODEL_CONFIGS = [c for c in CONFIGS if "models/" in c and not c.endswith("cpu.py")]


@pytest.mark.parametrize("config", CONFIGS)
def test_config_loads(config):
    cfg = LazyConfig.load(os.path.join(REPO, config))
    if config.startswith("configs/smoke/"):
        assert {"model", "dataloader", "optimizer", "lr_multiplier", "train"} <= set(cfg)


@pytest.mark.parametrize("config", MODEL_CONFIGS)
def test_model_builds(config):
    model = instantiate(LazyConfig.load(os.path.join(REPO, config)).model)
    assert sum(p.numel() for p in model.parameters()) > 1e6


@pytest.mark.parametrize(
    "config", ["faster_rcnn_fpn_cpu.py", "mask_rcnn_fpn_cpu.py", "retinanet_cpu.py"]
)
def test_cpu_detectors_train_a_step_on_synthetic_data(config):
    cfg = LazyConfig.load(os.path.join(REPO, "configs/common/models", config))
    num_classes = len(MetadataCatalog.get("synthetic_shapes_train").thing_classes)
    if "retinanet" in config:
        cfg.model.num_classes = num_classes
    else:
        cfg.model.roi_heads.num_classes = num_classes
    model = instantiate(cfg.model).train()
    mapper = DetectionDatasetMapper(is_train=True, augmentations=[], image_format="BGR",
                                    use_instance_mask="mask" in config)
    batch = [mapper(record) for record in DatasetCatalog.get("synthetic_shapes_train")[:2]]
    with EventStorage():
        losses = model(batch)
        sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    if "mask" in config:
        assert "loss_mask" in losses
    model.eval()
    with torch.no_grad():
        outputs = model([{"image": batch[0]["image"]}])
    assert outputs[0]["instances"].image_size == tuple(batch[0]["image"].shape[1:])


def test_shorter_runs_keep_the_warmup_in_iterations():
    """For every config with an LR schedule, ``train.max_iter=100``: a linear warm-up over the
    config's ``warmup_iters`` (at most the 100 iterations), then the config's scheduler at the same
    fraction of the run (detectron2's warm-up, a fraction of the run, shrank to ~8 iterations of
    100 for a 50-of-600 one and diverged)."""
    short_run = 100
    checked = 0
    for config in CONFIGS:
        cfg = LazyConfig.load(os.path.join(REPO, config))
        if "lr_multiplier" not in cfg:
            continue
        assert cfg.lr_multiplier._target_ is warmup_in_iterations, config
        cfg = apply_overrides(cfg, [f"train.max_iter={short_run}"])
        multiplier = instantiate(cfg.lr_multiplier)
        after_warmup = instantiate(cfg.lr_multiplier.scheduler)
        warmup = min(cfg.lr_multiplier.warmup_iters, short_run)
        start = cfg.lr_multiplier.warmup_factor * after_warmup(0.0)
        for iteration in range(short_run):
            where = iteration / short_run
            if iteration < warmup:
                expected = start + (after_warmup(warmup / short_run) - start) * iteration / warmup
            else:
                expected = after_warmup(where)
            assert multiplier(where) == pytest.approx(expected, abs=1e-12), (config, iteration)
        checked += 1
    assert checked > 50


# CPU detector configs trainable without a workflow's outputs (DAP's pseudo boxes are replaced by
# the detection split with the same classes; ResNet-WS needs proposal files: tests/resnet_ws and
# the COCO128 tier train it).
SHORT_RUN_CONFIGS = {
    "configs/smoke/faster_rcnn_R18_FPN_synthetic.py": [],
    "configs/dap/synthetic_pretrain_faster_rcnn_cpu.py": ["dataloader.train.dataset.names=synthetic_shapes_train"],
    "configs/dap/synthetic_finetune_faster_rcnn_cpu.py": [],
    "configs/msad/synthetic_fcos_R18_FPN_cpu.py": [],
    "configs/msad/synthetic_fcos_teacher_cpu.py": [],
    "configs/msad/synthetic_fcos_student_cpu.py": [],
    **{f"configs/tied_conv/synthetic_{detector}_{backbone}_fpn_cpu.py": []
       for detector in ("faster_rcnn", "mask_rcnn", "retinanet") for backbone in ("resnet50", "tied_resnet50")},
    # the cross-paper runs of README.md "Combinations"; their 50-layer FrozenBN bottom-ups need the classifier's
    # statistics (the CLS initialisation) not to overflow, so they train with BN here
    **{f"configs/dap/synthetic_{step}_faster_rcnn_{backbone}_cpu.py":
       ["model.backbone.bottom_up.norm=BN"] + (["dataloader.train.dataset.names=synthetic_shapes_train"]
                                               if step == "pretrain" else [])
       for step in ("pretrain", "finetune") for backbone in ("resnet50", "tied_resnet50")},
    **{f"configs/msad/synthetic_fcos_{backbone}_{role}_cpu.py": []
       for role in ("teacher", "student") for backbone in ("resnet50", "tied_resnet50")},
}


class StopAfter(HookBase):
    """Ends training after ``iterations`` steps of a longer run (the LR schedule is the run's)."""

    class Reached(Exception):
        pass

    def __init__(self, iterations: int):
        self.iterations = iterations

    def after_step(self):
        if self.trainer.iter + 1 >= self.iterations:
            raise StopAfter.Reached


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(SHORT_RUN_CONFIGS))
def test_cpu_detector_configs_stay_finite_in_a_short_run(config, tmp_path):
    """The launcher's trainer on a ``train.max_iter=100`` run: its first 3 iterations (batch 1)."""
    cfg = load_config(os.path.join(REPO, config), [
        "train.max_iter=100", f"train.output_dir={tmp_path}", "train.device=cpu", "train.seed=0",
        "dataloader.train.total_batch_size=1", "dataloader.train.num_workers=0", *SHORT_RUN_CONFIGS[config]])
    trainer, _ = build_trainer(cfg)
    trainer.register_hooks([StopAfter(3)])
    with pytest.raises(StopAfter.Reached):
        trainer.train(0, cfg.train.max_iter)
    losses = trainer.storage.histories()["total_loss"].values()
    assert len(losses) == 3 and all(math.isfinite(value) for value, _ in losses), losses
    warming_up = instantiate(cfg.lr_multiplier)(2 / cfg.train.max_iter)  # the third iteration's multiplier
    assert warming_up < 0.2
    assert trainer.storage.history("lr").latest() == pytest.approx(cfg.optimizer.lr * warming_up)


@pytest.mark.parametrize(
    "config, dataset",
    [("configs/common/data/coco.py", "coco_2017_train"),
     ("configs/common/data/voc.py", "voc_2007_trainval"),
     ("configs/common/data/imagenet.py", "imagenet_train")],
)
def test_real_dataset_configs_say_how_to_get_the_data(config, dataset, monkeypatch):
    cfg = LazyConfig.load(os.path.join(REPO, config))
    metadata = MetadataCatalog.get(dataset)
    on_disk = [metadata.get(key) for key in ("json_file", "image_root", "dirname") if metadata.get(key)]
    if on_disk and all(os.path.exists(path) for path in on_disk):
        pytest.skip(f"{dataset} is on this machine")
    with pytest.raises(FileNotFoundError, match="DETECTRON2_DATASETS"):
        instantiate(cfg.dataloader.train.dataset)

"""Every LazyConfig under configs/ loads, its model builds, the CPU-sized detectors train a step
on synthetic data, and configs of real datasets fail with an error that says how to get them."""
import glob
import os

import pytest
import torch

from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.events import EventStorage

from projects.common.data import DetectionDatasetMapper

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

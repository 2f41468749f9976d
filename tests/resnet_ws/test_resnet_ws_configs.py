"""The CPU WSOD configs through train_net.py: training from image-level labels on a proposal file,
and evaluation through a config's test-time augmentation."""
import os
import pickle

import numpy as np
import pytest

from detectron2.config import LazyCall as L
from detectron2.data import DatasetCatalog

from projects.common import engine
from projects.common.metrics import last_evaluation
from projects.resnet_ws import WeaklySupervisedRCNNWithTTA

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OICR = os.path.join(REPO, "configs/resnet_ws/synthetic_oicr_R18_WS_cpu.py")
FEW_IMAGES = 8


@pytest.fixture(scope="module")
def small_voc_split(tmp_path_factory):
    """The first images of synthetic_shapes_voc_train as a dataset, with 30 random proposals each."""
    folder = tmp_path_factory.mktemp("wsod")
    name = "synthetic_shapes_voc_train_first8"
    if name not in DatasetCatalog.list():
        from detectron2.data import MetadataCatalog

        DatasetCatalog.register(name, lambda: DatasetCatalog.get("synthetic_shapes_voc_train")[:FEW_IMAGES])
        source = MetadataCatalog.get("synthetic_shapes_voc_train")
        MetadataCatalog.get(name).set(thing_classes=source.thing_classes, dirname=source.dirname,
                                      split=source.split, year=source.year)
    rng = np.random.default_rng(0)
    records = DatasetCatalog.get(name)
    corners = [rng.uniform(0, 150, size=(30, 2)) for _ in records]
    content = {
        "ids": [r["image_id"] for r in records],
        "boxes": [np.concatenate([c, c + rng.uniform(12, 100, size=(30, 2))], axis=1).astype(np.float32)
                  for c in corners],
        "objectness_logits": [np.linspace(1, 0, 30, dtype=np.float32) for _ in records],
    }
    proposals = str(folder / "proposals.pkl")
    with open(proposals, "wb") as f:
        pickle.dump(content, f)
    overrides = [f"dataloader.train.dataset.names={name}", f"dataloader.train.dataset.proposal_files=[{proposals}]",
                 f"dataloader.test.dataset.names={name}", f"dataloader.test.dataset.proposal_files=[{proposals}]",
                 "dataloader.train.num_workers=0", "dataloader.test.num_workers=0", "train.init_checkpoint="]
    return folder, overrides


@pytest.mark.slow
@pytest.mark.parametrize("config", ["oicr", "wsddn", "oicr_reg"])
def test_cpu_wsod_configs_train_and_evaluate_through_train_net(small_voc_split, config):
    folder, overrides = small_voc_split
    output_dir = folder / config
    args = engine.parse_args([
        "--config-file", os.path.join(REPO, f"configs/resnet_ws/synthetic_{config}_R18_WS_cpu.py"),
        *overrides, "train.max_iter=2", "train.eval_period=2", f"train.output_dir={output_dir}"])
    engine.main(args)
    results = last_evaluation(str(output_dir), ["voc/AP50", "corloc/CorLoc"])
    assert 0.0 <= results["voc/AP50"] <= 100.0 and 0.0 <= results["corloc/CorLoc"] <= 100.0
    assert os.path.exists(output_dir / "model_final.pth")


def test_do_test_runs_the_configs_test_time_augmentation(small_voc_split, monkeypatch):
    _, overrides = small_voc_split
    cfg = engine.load_config(OICR, overrides)
    cfg.test_time_augmentation = L(WeaklySupervisedRCNNWithTTA)(min_sizes=(192, 256), max_size=480, flip=True)
    calls = []
    original = WeaklySupervisedRCNNWithTTA.merged_proposal_predictions

    def counting(self, input_dict):
        calls.append(input_dict["image_id"])
        return original(self, input_dict)

    monkeypatch.setattr(WeaklySupervisedRCNNWithTTA, "merged_proposal_predictions", counting)
    results = engine.do_test(cfg, engine.build_model(cfg).eval())
    assert len(calls) == FEW_IMAGES and "corloc" in results and "voc" in results

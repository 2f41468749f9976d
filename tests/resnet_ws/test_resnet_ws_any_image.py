"""ResNet-WS on any image: the configs' default proposal source (Selective Search, fast mode, with
the test mapper's top-K and minimum size) makes proposals on the fly for images without a
proposal file, so LazyPredictor and the demo run on real COCO128 photos; the demo labels boxes
with the class names of a COCO registration."""
import os
import shutil

import cv2
import pytest
import torch

from detectron2.config import instantiate
from detectron2.data import DatasetCatalog
from detectron2.data.datasets import register_coco_instances

from projects.common import demo
from projects.common.engine import load_config
from projects.common.predictor import LazyPredictor
from projects.resnet_ws.proposals import SelectiveSearchProposals

CONFIG = "resnet_ws/synthetic_oicr_R18_WS_cpu.py"
RANDOM_WEIGHTS = "train.init_checkpoint="  # no trained detector here: random weights, on purpose
PHOTOS = ("000000000009.jpg", "000000000025.jpg")


@pytest.mark.parametrize("config", ["resnet_ws/synthetic_oicr_R18_WS_cpu.py", "resnet_ws/synthetic_wsddn_R18_WS_cpu.py",
                                    "resnet_ws/voc07_oicr_R50_WS.py", "resnet_ws/voc07_oicr_R50_C4.py",
                                    "resnet_ws/coco_oicr_R50_WS.py"])
def test_configs_default_to_selective_search_with_the_test_mappers_settings(config):
    cfg = load_config(config)
    generator = instantiate(cfg.model.proposal_generator)
    assert isinstance(generator, SelectiveSearchProposals) and generator.mode == "fast"
    assert generator.max_proposals == cfg.dataloader.test.mapper.proposal_topk
    assert generator.min_size == cfg.dataloader.test.mapper.proposal_min_size


def test_selective_search_proposals_check_their_settings():
    with pytest.raises(ValueError, match="mode must be one of"):
        SelectiveSearchProposals(mode="slow")
    with pytest.raises(ValueError, match="max_proposals=-1.*must not be negative"):
        SelectiveSearchProposals(max_proposals=-1)
    assert repr(SelectiveSearchProposals(max_proposals=10)).startswith("SelectiveSearchProposals(mode='fast', max_proposals=10")


def test_predictor_detects_on_a_real_photo_with_proposals_made_on_the_fly(coco128_dir):
    predictor = LazyPredictor(load_config(CONFIG, [RANDOM_WEIGHTS]), allow_random_weights=True)
    photo = cv2.imread(os.path.join(coco128_dir, "train2017", PHOTOS[0]))
    instances = predictor(photo)["instances"]
    assert instances.image_size == photo.shape[:2] and len(instances) > 0
    boxes = instances.pred_boxes.tensor
    assert (boxes >= 0).all() and (boxes[:, 2] <= photo.shape[1]).all() and (boxes[:, 3] <= photo.shape[0]).all()

    # what the predictor did: Selective Search on the resized photo the model reads, limited as the
    # test mapper limits proposal files (top 4000, wider and taller than 8 px)
    image = predictor.preprocess(photo)
    proposals = predictor.model.generate_proposals(image)
    sides = proposals.proposal_boxes.tensor[:, 2:] - proposals.proposal_boxes.tensor[:, :2]
    assert 50 < len(proposals) <= 4000 and (sides >= 8).all()
    with torch.no_grad():
        explicit = predictor.model([{"image": image, "proposals": proposals, "height": photo.shape[0],
                                     "width": photo.shape[1]}])[0]["instances"]
    assert torch.equal(explicit.pred_boxes.tensor, boxes) and torch.equal(explicit.scores, instances.scores)


def test_demo_draws_resnet_ws_detections_on_photos_labelled_by_a_coco_registration(coco128_dir, tmp_path,
                                                                                    monkeypatch, capsys):
    dataset = "coco128_resnet_ws_demo"
    if dataset not in DatasetCatalog.list():
        register_coco_instances(dataset, {}, os.path.join(coco128_dir, "annotations", "instances_train2017.json"),
                                os.path.join(coco128_dir, "train2017"))
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copy(os.path.join(coco128_dir, "train2017", name), folder / name)
    metadata_drawn_with = []
    draw = demo.draw
    monkeypatch.setattr(demo, "draw", lambda image, outputs, metadata, *args: (metadata_drawn_with.append(metadata),
                                                                                draw(image, outputs, metadata, *args))[1])
    demo.main(["--config-file", CONFIG, "--input", str(folder), "--output", str(tmp_path / "drawn"),
               "--confidence-threshold", "0", "--allow-random-weights",
               "--opts", RANDOM_WEIGHTS, f"dataloader.test.dataset.names={dataset}"])

    assert sorted(os.listdir(tmp_path / "drawn")) == ["000000000009.png", "000000000025.png"]
    for name in PHOTOS:
        photo = cv2.imread(str(folder / name))
        drawn = cv2.imread(str(tmp_path / "drawn" / name.replace(".jpg", ".png")))
        assert drawn.shape == photo.shape and (drawn != photo).any(axis=2).mean() > 0.01
    assert len(metadata_drawn_with) == 2
    assert metadata_drawn_with[0].thing_classes[:3] == ["person", "bicycle", "car"]
    assert "no detection" not in capsys.readouterr().out

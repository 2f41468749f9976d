"""The detectron2 installation works on this stack: each fix of tools/install_detectron2.py is
exercised through detectron2's public API (and holds on an official build too)."""
import importlib
import os
import sys

import numpy as np
import pytest
import torch

import detectron2
from detectron2.engine import SimpleTrainer, hooks, launch
from detectron2.utils import comm

from projects.common.runtime import has_c_extension

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import install_detectron2  # noqa: E402


def test_core_packages_import():
    for name in ("detectron2.modeling", "detectron2.evaluation", "detectron2.engine",
                 "detectron2.layers", "detectron2.utils.analysis", "detectron2.model_zoo"):
        importlib.import_module(name)


def test_patched_install_is_current_or_official():
    location, current = install_detectron2.find_detectron2()
    assert location == os.path.dirname(detectron2.__file__)
    marker = os.path.join(location, install_detectron2.MARKER)
    assert current or not os.path.exists(marker), "stale patched detectron2: rerun ./run.sh setup"


def test_model_zoo_configs_are_packaged():
    from detectron2 import model_zoo

    cfg = model_zoo.get_config("common/models/mask_rcnn_fpn.py")
    assert cfg.model.roi_heads.num_classes == 80


def test_c_only_features_work_or_raise_clear_errors():
    """Official build: the C++ ops run. Pure-Python install: they say what is missing and why."""
    from detectron2.layers import ROIAlignRotated, nms_rotated
    from detectron2.structures import RotatedBoxes, pairwise_iou_rotated

    boxes = torch.tensor([[10.0, 10.0, 4.0, 4.0, 0.0]] * 2)
    checks = [
        lambda: nms_rotated(boxes, torch.tensor([1.0, 0.5]), 0.5).tolist() == [0],
        lambda: pairwise_iou_rotated(RotatedBoxes(boxes), RotatedBoxes(boxes)).shape == (2, 2),
        lambda: ROIAlignRotated((2, 2), 1.0, 0)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 6)).shape == (1, 1, 2, 2),
    ]
    for check in checks:
        if has_c_extension():
            assert check()
        else:
            with pytest.raises(RuntimeError, match="unavailable.*built from source"):
                check()


def test_deformable_conv_runs_on_cpu_through_torchvision():
    """detectron2 v0.6 sends CPU deformable convs to torchvision; only CUDA ones need `_C`."""
    from torchvision.ops import deform_conv2d

    from detectron2.layers import DeformConv

    torch.manual_seed(0)
    layer = DeformConv(2, 3, 3, padding=1, bias=False)
    x, offset = torch.randn(1, 2, 6, 6), torch.randn(1, 18, 6, 6)
    assert torch.allclose(layer(x, offset), deform_conv2d(x, offset, layer.weight, padding=1), atol=1e-5)


def test_coco_evaluator_defaults_work_without_fast_impl(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.evaluation import COCOEvaluator
    from detectron2.structures import Boxes, BoxMode, Instances

    name = "test_install_tiny_coco"
    if name not in DatasetCatalog.list():
        record = {"file_name": "x.jpg", "image_id": 1, "height": 32, "width": 32,
                  "annotations": [{"bbox": [2, 2, 20, 20], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}]}
        DatasetCatalog.register(name, lambda: [record])
        MetadataCatalog.get(name).thing_classes = ["thing"]
    evaluator = COCOEvaluator(name, output_dir=str(tmp_path))  # use_fast_impl=True by default
    evaluator.reset()
    prediction = Instances((32, 32), pred_boxes=Boxes(torch.tensor([[2.0, 2.0, 20.0, 20.0]])),
                           scores=torch.tensor([0.9]), pred_classes=torch.tensor([0]))
    evaluator.process([{"image_id": 1}], [{"instances": prediction}])
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(100.0)


def test_pillow_transform_default_interpolation():
    from detectron2.data.transforms import ExtentTransform

    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    out = ExtentTransform(src_rect=(0, 0, 8, 8), output_size=(4, 4)).apply_image(image)
    assert out.shape == (4, 4)


def test_retinanet_head_with_group_norm_builds():
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.meta_arch.retinanet import RetinaNetHead

    head = RetinaNetHead(input_shape=[ShapeSpec(channels=32)] * 2, num_classes=3, num_anchors=1,
                         conv_dims=[32], norm="GN")
    logits, _ = head([torch.zeros(1, 32, 8, 8)] * 2)
    assert logits[0].shape == (1, 3, 8, 8)


def test_mapper_returning_none_is_retried():
    from detectron2.data.common import DatasetFromList, MapDataset

    dataset = MapDataset(DatasetFromList(list(range(10)), copy=False), lambda x: None if x == 3 else x)
    assert dataset[3] != 3 and dataset[3] is not None


def test_class_histogram_of_train_loader_runs():
    from detectron2.data.build import print_instances_class_histogram

    dicts = [{"annotations": [{"category_id": 0}, {"category_id": 1}]}]
    print_instances_class_histogram(dicts, ["a", "b"])


def _train_with_torch_scheduler(model, optimizer, max_iter, start_iter=0, state=None):
    data = iter(lambda: torch.ones(1, 2), None)

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            return {"loss": self.inner(x).sum()}

    trainer = SimpleTrainer(Wrapped(), data, optimizer)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[3], gamma=0.1)
    trainer.register_hooks([hooks.LRScheduler(optimizer, scheduler)])
    if state is not None:
        trainer.load_state_dict(state)
    trainer.train(start_iter, max_iter)
    return trainer, scheduler


def test_lr_scheduler_state_is_checkpointed_and_resumed():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    trainer, scheduler = _train_with_torch_scheduler(model, optimizer, max_iter=5)
    state = trainer.state_dict()
    assert state["hooks"]["LRScheduler"]["last_epoch"] == 5
    assert "optimizer" in state

    resumed_model = torch.nn.Linear(2, 1)
    resumed_optimizer = torch.optim.SGD(resumed_model.parameters(), lr=1.0, momentum=0.9)
    resumed, resumed_scheduler = _train_with_torch_scheduler(
        resumed_model, resumed_optimizer, max_iter=5, start_iter=5, state=state
    )
    assert resumed_scheduler.last_epoch == scheduler.last_epoch
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    momentum = resumed_optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(momentum, optimizer.state_dict()["state"][0]["momentum_buffer"])


def _gather_ranks(output_dir):
    ranks = comm.all_gather(comm.get_rank())
    if comm.is_main_process():
        with open(os.path.join(output_dir, "ranks.txt"), "w") as f:
            f.write(" ".join(map(str, ranks)) + f" {torch.distributed.get_backend()}")


def test_launch_two_processes_on_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this test is about CPU-only machines")
    launch(_gather_ranks, 2, dist_url="auto", args=(str(tmp_path),))
    assert (tmp_path / "ranks.txt").read_text() == "0 1 gloo"

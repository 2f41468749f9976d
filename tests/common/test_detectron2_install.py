"""The detectron2 installation works on this stack: each fix of tools/install_detectron2.py is
exercised through detectron2's public API (and holds on an official build too)."""
import importlib
import os
import subprocess
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


def reference_deform_conv(x, offset, weight, bias=None, mask=None, stride=1, padding=0, dilation=1,
                          groups=1, deformable_groups=1):
    """Deformable convolution written out: for each kernel position, the input sampled bilinearly
    (zero outside the image) at the grid point plus its (dy, dx) offset, scaled by the mask (v2),
    then a grouped 1x1 product with that position's weights."""
    n, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = (height + 2 * padding - dilation * (kernel_h - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel_w - 1) - 1) // stride + 1
    rows = (torch.arange(out_h, dtype=x.dtype, device=x.device) * stride - padding).view(1, -1, 1)
    cols = (torch.arange(out_w, dtype=x.dtype, device=x.device) * stride - padding).view(1, 1, -1)
    group_channels = channels // deformable_groups
    positions = []
    for i in range(kernel_h):
        for j in range(kernel_w):
            sampled = []
            for group in range(deformable_groups):
                index = (group * kernel_h + i) * kernel_w + j
                y = rows + i * dilation + offset[:, 2 * index]
                x_ = cols + j * dilation + offset[:, 2 * index + 1]
                grid = torch.stack((2 * x_ / (width - 1) - 1, 2 * y / (height - 1) - 1), dim=-1)
                values = torch.nn.functional.grid_sample(
                    x[:, group * group_channels : (group + 1) * group_channels], grid,
                    mode="bilinear", padding_mode="zeros", align_corners=True)
                sampled.append(values if mask is None else values * mask[:, index : index + 1])
            positions.append(torch.cat(sampled, dim=1))
    columns = torch.stack(positions, dim=2).view(n, groups, channels // groups, kernel_h * kernel_w, out_h, out_w)
    grouped_weight = weight.view(groups, out_channels // groups, channels // groups, kernel_h * kernel_w)
    out = torch.einsum("ngckhw,gock->ngohw", columns, grouped_weight).reshape(n, out_channels, out_h, out_w)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
# detectron2's own kernels have no CPU backward and no CPU modulated (v2) forward
torchvision_deform_conv = pytest.mark.skipif(has_c_extension(), reason="detectron2 with its C++ extension")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("modulated", [False, True], ids=["DCNv1", "DCNv2"])
@pytest.mark.parametrize("stride, padding, dilation, groups, deformable_groups",
                         [(1, 1, 1, 1, 1), (2, 1, 1, 2, 2), (1, 2, 2, 1, 2)])
def test_deformable_conv_matches_reference_forward_and_gradients(
        device, modulated, stride, padding, dilation, groups, deformable_groups):
    """detectron2's DeformConv / ModulatedDeformConv (torchvision's kernels without `_C`) against
    the written-out definition, in float64, on offsets of a few pixels that leave the image."""
    from detectron2.layers import DeformConv, ModulatedDeformConv

    if device == "cpu" and has_c_extension():
        pytest.skip("detectron2's C++ build has no CPU backward (nor CPU forward of DCNv2)")

    torch.manual_seed(0)
    layer_class = ModulatedDeformConv if modulated else DeformConv
    layer = layer_class(4, 6, 3, stride=stride, padding=padding, dilation=dilation, groups=groups,
                        deformable_groups=deformable_groups).double().to(device)
    if modulated:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 7, 8, dtype=torch.double, device=device, requires_grad=True)
    out_h = (7 + 2 * padding - 2 * dilation - 1) // stride + 1
    out_w = (8 + 2 * padding - 2 * dilation - 1) // stride + 1
    offset = (2 * torch.randn(2, 18 * deformable_groups, out_h, out_w, dtype=torch.double, device=device)
              ).requires_grad_()
    mask = torch.rand(2, 9 * deformable_groups, out_h, out_w, dtype=torch.double, device=device,
                      requires_grad=True) if modulated else None
    output = layer(x, offset, mask) if modulated else layer(x, offset)
    expected = reference_deform_conv(x, offset, layer.weight, layer.bias, mask, stride, padding, dilation,
                                     groups, deformable_groups)
    torch.testing.assert_close(output, expected, rtol=1e-10, atol=1e-10)
    inputs = [x, offset, layer.weight] + ([mask, layer.bias] if modulated else [])
    output_grad = torch.randn_like(output)
    for got, want in zip(torch.autograd.grad(output, inputs, output_grad),
                         torch.autograd.grad(expected, inputs, output_grad)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@torchvision_deform_conv
def test_deformable_conv_shape_errors_name_the_fix():
    from detectron2.layers import DeformConv

    layer = DeformConv(4, 4, 3, padding=1, deformable_groups=2)
    with pytest.raises(ValueError, match="deformable_groups=2 with a 3x3 kernel needs 2 \\* 18 = 36"):
        layer(torch.zeros(1, 4, 5, 5), torch.zeros(1, 18, 5, 5))


@torchvision_deform_conv
def test_resnet_with_deformable_stages_trains_on_cpu():
    """detectron2's DeformBottleneckBlock (DCNv2 in res4/res5, MODEL.RESNETS.DEFORM_ON_PER_STAGE)."""
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import build_resnet_backbone

    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, True, True]
    cfg.MODEL.RESNETS.DEFORM_MODULATED = True
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    features = backbone(torch.randn(1, 3, 64, 64))
    features["res4"].mean().backward()
    offset_conv = backbone.res4[0].conv2_offset
    assert offset_conv.weight.grad is not None and torch.isfinite(backbone.res4[0].conv2.weight.grad).all()


def test_fast_coco_eval_is_available():
    """COCOEvaluator's default fast path: detectron2's C++ COCOeval, else faster-coco-eval's."""
    from detectron2.evaluation import COCOEvaluator

    evaluator = COCOEvaluator("synthetic_shapes_val")
    assert evaluator._use_fast_impl


@pytest.mark.parametrize("with_masks", [False, True], ids=["bbox", "bbox+segm"])
def test_fast_coco_eval_gives_the_official_numbers(with_masks, dataset_subset, jittered_predictions, tmp_path):
    """COCOEvaluator with the fast COCOeval and with pycocotools' on jittered ground truth of the
    synthetic validation images: the same AP, AP50, ..., per-category AP (to 1e-9 in percent)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.evaluation import COCOEvaluator

    name = dataset_subset("synthetic_shapes_val", "test_fast_coco_eval_val", count=40)
    predictions = jittered_predictions(DatasetCatalog.get(name), len(MetadataCatalog.get(name).thing_classes),
                                       with_masks=with_masks)
    results = {}
    for use_fast_impl in (True, False):
        evaluator = COCOEvaluator(name, output_dir=str(tmp_path / str(use_fast_impl)), use_fast_impl=use_fast_impl)
        evaluator.reset()
        for model_input, output in predictions:
            evaluator.process([model_input], [output])
        results[use_fast_impl] = evaluator.evaluate()
    fast, official = results[True], results[False]
    assert fast.keys() == official.keys() == ({"bbox", "segm"} if with_masks else {"bbox"})
    for task in fast:
        assert fast[task].keys() == official[task].keys()
        assert 10 < official[task]["AP"] < 90
        for metric, value in official[task].items():
            assert fast[task][metric] == pytest.approx(value, abs=1e-9, nan_ok=True), (task, metric)


def test_fast_coco_eval_of_keypoints_gives_the_official_numbers():
    """Keypoint AP (OKS) on a hand-made person set: the fast COCOeval and pycocotools agree."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from detectron2.evaluation.fast_eval_api import COCOeval_opt

    rng = np.random.default_rng(0)
    images, annotations, results = [], [], []
    for image_id in range(1, 6):
        images.append({"id": image_id, "height": 200, "width": 200, "file_name": f"{image_id}.jpg"})
        for _ in range(2):
            x0, y0 = rng.uniform(0, 100, 2)
            points = np.stack([rng.uniform(x0, x0 + 80, 17), rng.uniform(y0, y0 + 80, 17), np.full(17, 2)], 1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [x0, y0, 80, 80], "area": 6400.0, "num_keypoints": 17,
                                "keypoints": points.ravel().tolist()})
            detected = points + np.concatenate([rng.normal(0, 4, (17, 2)), np.zeros((17, 1))], 1)
            results.append({"image_id": image_id, "category_id": 1, "score": float(rng.random()),
                            "keypoints": detected.ravel().tolist()})
    ground_truth = COCO()
    ground_truth.dataset = {"images": images, "annotations": annotations,
                            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "unused"}]}
    stats = []
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        for evaluator_class in (COCOeval, COCOeval_opt):
            coco_eval = evaluator_class(ground_truth, ground_truth.loadRes(results), "keypoints")
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
            stats.append(coco_eval.stats)
    assert 0.1 < stats[0][0] < 0.9
    np.testing.assert_allclose(stats[1], stats[0], atol=1e-12)


def test_polygon_crop_uses_shapely():
    """fvcore's CropTransform (detectron2's RandomCrop) clips polygon annotations with shapely."""
    from detectron2.data.transforms import CropTransform

    triangle = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    (cropped,) = CropTransform(5, 0, 10, 10).apply_polygons([triangle])
    area = 0.5 * abs(np.dot(cropped[:, 0], np.roll(cropped[:, 1], 1)) - np.dot(cropped[:, 1], np.roll(cropped[:, 0], 1)))
    assert area == pytest.approx(10 * 10 - 0.5 * 5 * 5)  # the 10x10 window minus the corner beyond x + y = 20


@pytest.mark.slow  # a new Python process importing the whole stack
@pytest.mark.skipif(not os.path.exists(os.path.join(os.path.dirname(detectron2.__file__), install_detectron2.MARKER)),
                    reason="the quiet start-up is an edit of tools/install_detectron2.py; this detectron2 is not")
def test_startup_prints_no_warnings_and_user_scripting_still_warns():
    """Importing the stack prints nothing (torch.jit.script FutureWarnings of detectron2's and
    fvcore's import-time scripting are silenced there only)."""
    code = (
        "import warnings\n"
        "import detectron2.modeling, detectron2.evaluation, detectron2.engine, detectron2.layers\n"
        "import projects.common.engine, dap, tied_conv, projects.msad, projects.resnet_ws, projects.san\n"
        "import torch\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    torch.jit.script(torch.nn.ReLU())\n"
        "print(any(issubclass(w.category, FutureWarning) for w in caught))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip() == "True"


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


class _MeanColourRegressor(torch.nn.Module):
    """The smallest model DefaultTrainer can train: a linear map of each image's mean colour."""

    def __init__(self, cfg):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, batch):
        colours = torch.stack([record["image"].float().mean((1, 2)) / 255 for record in batch])
        return {"loss": self.linear(colours).pow(2).mean()}


def _default_trainer(output_dir, max_iter):
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultTrainer
    from detectron2.modeling import META_ARCH_REGISTRY

    if "_MeanColourRegressor" not in META_ARCH_REGISTRY:
        META_ARCH_REGISTRY.register(_MeanColourRegressor)
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "_MeanColourRegressor"
    cfg.MODEL.DEVICE = "cpu"
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = ("synthetic_shapes_train",), ()
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN = (32,), 64
    cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS = 2, max_iter, 10
    cfg.SOLVER.CHECKPOINT_PERIOD = 3
    cfg.OUTPUT_DIR = str(output_dir)
    return DefaultTrainer(cfg)


def test_default_trainer_resumes_optimizer_state(tmp_path):
    """detectron2 v0.6's DefaultTrainer saved no optimizer state: a resumed run took its first step
    at the warm-up LR, with zero momentum (``projects.common.runtime.checkpoint_default_trainer_optimizer``)."""
    trainer = _default_trainer(tmp_path, max_iter=3)
    trainer.resume_or_load(resume=False)
    trainer.train()  # saves model_0000002.pth, the last checkpoint
    momentum = trainer.optimizer.state_dict()["state"]
    assert momentum

    resumed = _default_trainer(tmp_path, max_iter=6)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 3
    assert resumed.optimizer.param_groups[0]["lr"] == trainer.optimizer.param_groups[0]["lr"]  # not the warm-up start
    restored = resumed.optimizer.state_dict()["state"]
    assert restored.keys() == momentum.keys()
    for key in momentum:
        assert torch.equal(restored[key]["momentum_buffer"], momentum[key]["momentum_buffer"])


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

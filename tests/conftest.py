"""Fixtures shared by the test folders (one per project, plus common/)."""
import inspect
import os

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, ListConfig

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultPredictor
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import build_model
from detectron2.structures import Instances

import projects.common.data  # noqa: F401  (registers the embedded datasets)
from projects.common.config import get_cfg, get_config_file
from projects.common.engine import load_config
from projects.common.predictor import LazyPredictor


@pytest.fixture
def unique_dataset_name(request):
    """A dataset name unique to the test (registrations last for the whole session)."""
    return "test_" + request.node.name.replace("[", "_").replace("]", "")


@pytest.fixture(scope="session")
def dataset_subset():
    """``dataset_subset(base, name, step=1, count=None)`` registers ``base``'s images
    ``[:count*step:step]`` as dataset ``name`` with ``base``'s class names and evaluator type, once
    per session, and returns ``name``: small evaluation sets cut from the embedded data."""

    def register(base: str, name: str, count: int, step: int = 1) -> str:
        if name not in DatasetCatalog.list():
            DatasetCatalog.register(name, lambda: DatasetCatalog.get(base)[: count * step : step])
            base_metadata = MetadataCatalog.get(base)
            MetadataCatalog.get(name).set(thing_classes=base_metadata.thing_classes,
                                          evaluator_type=base_metadata.get("evaluator_type"))
        return name

    return register


# ---------------------------------------------------------------- DefaultPredictor (yacs) vs LazyPredictor


@pytest.fixture
def yacs_config_of():
    """``yacs_config`` as a fixture: ``yacs_config_of(name, options=())``."""
    return yacs_config


def yacs_config(name, options=()):
    """The collection's ``get_cfg()`` with the YAML config ``name`` and ``KEY value`` options, on the CPU."""
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(name))
    cfg.merge_from_list(list(options))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def random_weights(model, seed=0):
    """``model``'s state dict with every float tensor perturbed by Gaussian noise (a tenth of its
    spread; 0.1 for constant tensors such as norm weights and BN statistics), so that every weight,
    including the ones initialised to one value, differs from its initialisation."""
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            spread = float(tensor.std()) if tensor.numel() > 1 else 0.0
            tensor = tensor + (0.1 * spread or 0.1) * torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor = tensor.abs()
        weights[name] = tensor
    return weights


def calibrate_norm_statistics(model, inputs):
    """Set the running statistics of every (frozen) batch norm of ``model`` to those of its input
    in one eval forward of ``inputs``, each norm seeing what the norms before it normalised: random
    weights then keep activations in range (random-weight TiedResNets otherwise overflow and
    detect nothing)."""
    def use_input_statistics(norm, args):
        norm.running_mean.copy_(args[0].mean(dim=(0, 2, 3)))
        norm.running_var.copy_(args[0].var(dim=(0, 2, 3)))

    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm2d, FrozenBatchNorm2d))]
    handles = [norm.register_forward_pre_hook(use_input_statistics) for norm in norms]
    try:
        with torch.no_grad():
            model.eval()(inputs)
    finally:
        for handle in handles:
            handle.remove()


@pytest.fixture(scope="session")
def norm_statistics_from_input():
    """``calibrate_norm_statistics`` as a fixture: ``norm_statistics_from_input(model, inputs)``."""
    return calibrate_norm_statistics


def _plain(value, nested=False):
    """A comparable form of a module attribute: numbers, strings, sequences and dicts of them, and
    (one level) the plain attributes of helper objects such as matchers; None for the rest."""
    if isinstance(value, (int, float, str, bool, type(None))):
        return value
    if isinstance(value, (list, tuple, ListConfig)):
        return tuple(_plain(item, nested) for item in value)
    if isinstance(value, (dict, DictConfig)):
        return {key: _plain(item, nested) for key, item in value.items()}
    if (isinstance(value, (torch.Tensor, torch.nn.Module, type)) or nested or inspect.isroutine(value)
            or not hasattr(value, "__dict__")):
        return None
    return type(value).__name__, _plain({k: v for k, v in vars(value).items() if not k.startswith("_")}, nested=True)


def module_settings(model):
    """``{"module.attribute": value}`` of every plain attribute of every submodule: thresholds,
    top-k, loss weights, strides, matchers... what a module's repr does not show."""
    settings = {}
    for module_name, module in model.named_modules():
        for name, value in vars(module).items():
            if not name.startswith("_") and name != "training":
                settings[f"{module_name}.{name}"] = _plain(value)
        loss_weight = settings.get(f"{module_name}.loss_weight")
        if isinstance(loss_weight, dict):  # detectron2's yacs path leaves FastRCNNOutputLayers' loss_cls at
            loss_weight.setdefault("loss_cls", 1.0)  # its implicit 1.0; its LazyConfig path names it
    return settings


def assert_same_model(built_from_yaml, built_from_lazy):
    """The same modules (repr), parameter and buffer shapes, frozen parameters and settings."""
    assert repr(built_from_yaml) == repr(built_from_lazy)
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (built_from_yaml, built_from_lazy)]
    assert shapes[0] == shapes[1]
    frozen = [{k for k, p in m.named_parameters() if not p.requires_grad} for m in (built_from_yaml, built_from_lazy)]
    assert frozen[0] == frozen[1]
    settings = [module_settings(m) for m in (built_from_yaml, built_from_lazy)]
    differences = {k: (settings[0].get(k), settings[1].get(k)) for k in set(settings[0]) | set(settings[1])
                   if settings[0].get(k) != settings[1].get(k)}
    assert not differences, f"settings differ (YAML, LazyConfig): {differences}"


def assert_equal_outputs(first, second):
    """Equal predictor outputs: the same keys, Instances fields and tensors (``torch.equal``)."""
    if isinstance(first, dict):
        assert first.keys() == second.keys()
        for key in first:
            assert_equal_outputs(first[key], second[key])
    elif isinstance(first, Instances):
        assert first.image_size == second.image_size
        assert first.get_fields().keys() == second.get_fields().keys()
        for name, value in first.get_fields().items():
            other = second.get(name)
            assert torch.equal(getattr(value, "tensor", value), getattr(other, "tensor", other)), name
    else:
        assert torch.equal(first, second)


@pytest.fixture(scope="session")
def default_predictor_matches_lazy(tmp_path_factory):
    """``check(yaml_name, lazy_name, image, *, test_size=None, yacs_options=(), lazy_overrides=(),
    prepare_weights=None, checkpoint=None)``: detectron2's ``DefaultPredictor`` on the YAML config
    and ``LazyPredictor`` on the LazyConfig, loaded with the same weights, build the same model and
    predict equal outputs for the BGR ``image``; returns the DefaultPredictor's output.

    The weights are ``checkpoint`` if given, else ``random_weights`` of the LazyConfig's seeded
    model with norm statistics calibrated on ``image`` (then ``prepare_weights(state_dict)`` if
    given). The YAML's test resize must be the LazyConfig's (a classifier's MIN_SIZE_TEST its
    centre crop); both predictors then resize as DefaultPredictor does (short edge MIN_SIZE_TEST,
    no crop), at ``test_size=(short edge, max size)`` when given (full-scale models on a small
    image).
    """
    folder = tmp_path_factory.mktemp("default_predictor")

    def check(yaml_name, lazy_name, image, *, test_size=None, yacs_options=(), lazy_overrides=(),
              prepare_weights=None, checkpoint=None):
        cfg = yacs_config(yaml_name, yacs_options)
        lazy = load_config(lazy_name, lazy_overrides)
        mapper = lazy.dataloader.test.mapper
        assert cfg.INPUT.FORMAT == mapper.image_format
        resize, *crop = mapper.augmentations
        if crop:
            assert cfg.INPUT.MIN_SIZE_TEST == crop[0].size
        else:
            assert (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST) == (resize.short_edge_length, resize.max_size)
        short_edge, max_size = test_size or (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = short_edge, max_size
        mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=short_edge, max_size=max_size)]

        written = checkpoint is None
        if written:
            torch.manual_seed(0)
            model = instantiate(lazy.model)
            model.load_state_dict(random_weights(model))
            height, width = image.shape[:2]
            calibrate_norm_statistics(model, [{"image": torch.as_tensor(image.transpose(2, 0, 1).copy()).float(),
                                               "height": height, "width": width}])
            weights = model.state_dict()
            if prepare_weights is not None:
                prepare_weights(weights)
            checkpoint = str(folder / (yaml_name.replace("/", "_") + ".pth"))
            torch.save({"model": weights}, checkpoint)
        cfg.MODEL.WEIGHTS = checkpoint
        default_predictor = DefaultPredictor(cfg)
        lazy_predictor = LazyPredictor(lazy, checkpoint=checkpoint, device="cpu")
        assert_same_model(default_predictor.model, lazy_predictor.model)
        output = default_predictor(image)
        assert_equal_outputs(output, lazy_predictor(image))
        if written:
            os.remove(checkpoint)
        if "instances" in output:
            assert len(output["instances"]) > 0, "no detections: the comparison would be empty"
        return output

    return check


@pytest.fixture
def yacs_builds_lazy_model():
    """``check(cfg, lazy_cfg)``: detectron2's ``build_model(cfg)`` (a yacs config, see
    ``yacs_config``) and the LazyConfig's model are the same model (``assert_same_model``)."""
    def check(cfg, lazy_cfg):
        assert_same_model(build_model(cfg), instantiate(lazy_cfg.model).to(cfg.MODEL.DEVICE))

    return check


@pytest.fixture
def noise_image():
    """``noise_image(height, width)``: a seeded random BGR uint8 image."""
    return lambda height, width: np.random.RandomState(0).randint(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------- predictions near the ground truth


def _annotation_mask(annotation, height, width):
    """The (H, W) bool mask of a COCO polygon list or RLE (compressed or not) annotation."""
    import pycocotools.mask as mask_util

    segmentation = annotation["segmentation"]
    if isinstance(segmentation, dict) and isinstance(segmentation["counts"], (str, bytes)):
        rle = segmentation
    else:
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    return mask_util.decode(rle).astype(bool)


def _shifted(mask, dx, dy):
    """``mask`` moved by (dx, dy) pixels, emptied where it enters the image."""
    height, width = mask.shape
    moved = np.zeros_like(mask)
    moved[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = \
        mask[max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)]
    return moved


def make_jittered_predictions(records, num_classes, seed=0, with_masks=False):
    """``(input, output)`` pairs for an evaluator's ``process``: for each detectron2 dataset dict,
    every annotation (crowd regions included) missed, found or found twice, its box jittered by
    ~8 % of its size, its class sometimes wrong, its mask (``with_masks``) the annotation's shifted
    with the box; plus background false positives. Scores are random, hence distinct."""
    from detectron2.structures import Boxes, BoxMode, Instances

    rng = np.random.default_rng(seed)
    pairs = []
    for record in records:
        height, width = record["height"], record["width"]
        boxes, masks = [], []
        for annotation in record.get("annotations", []):
            box = np.array(BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS), float)
            size = np.tile(box[2:] - box[:2], 2)
            for _ in range(rng.integers(0, 3)):
                jitter = rng.normal(0, 0.08, 4) * size
                boxes.append((box + jitter, annotation["category_id"] if rng.random() < 0.85
                              else int(rng.integers(num_classes))))
                if with_masks:
                    masks.append(_shifted(_annotation_mask(annotation, height, width),
                                          int(round(jitter[0])), int(round(jitter[1]))))
        for _ in range(rng.integers(0, 3)):
            x0, y0 = rng.uniform(0, 0.8) * width, rng.uniform(0, 0.8) * height
            box = np.array([x0, y0, x0 + rng.uniform(8, 0.2 * width), y0 + rng.uniform(8, 0.2 * height)])
            boxes.append((box, int(rng.integers(num_classes))))
            if with_masks:
                mask = np.zeros((height, width), bool)
                mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = True
                masks.append(mask)
        instances = Instances((height, width))
        instances.pred_boxes = Boxes(torch.tensor(np.array([b for b, _ in boxes]).reshape(-1, 4), dtype=torch.float32))
        instances.pred_boxes.clip((height, width))
        instances.scores = torch.tensor(rng.random(len(boxes)), dtype=torch.float32)
        instances.pred_classes = torch.tensor([c for _, c in boxes], dtype=torch.int64)
        if with_masks:
            instances.pred_masks = torch.from_numpy(np.array(masks).reshape(-1, height, width))
        pairs.append(({"image_id": record["image_id"], "height": height, "width": width},
                      {"instances": instances}))
    return pairs


@pytest.fixture(scope="session")
def jittered_predictions():
    """``make_jittered_predictions(records, num_classes, seed=0, with_masks=False)``: evaluator
    inputs and outputs near the ground truth of ``records``."""
    return make_jittered_predictions


@pytest.fixture(scope="session")
def coco128_dir():
    """The COCO128 folder (128 real COCO photos and their annotations, shared by the projects'
    checks on real images): ``$COCO128_DIR``, else ``../shared/data/coco128`` next to the
    repository. Tests that need it are skipped, with the reason, where it is absent; under
    CI=true its absence is a failure."""
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = os.environ.get("COCO128_DIR", os.path.join(repository, "..", "shared", "data", "coco128"))
    if not os.path.isfile(os.path.join(folder, "annotations", "instances_train2017.json")):
        message = (f"COCO128 not found at {os.path.abspath(folder)} (annotations/instances_train2017.json): "
                   "set COCO128_DIR to a folder with the first 128 COCO train2017 images in train2017/ and "
                   "their entries of the official annotations/instances_train2017.json, or put that folder at "
                   "../shared/data/coco128 from the repository root")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder

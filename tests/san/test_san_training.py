"""SAN training: the multi-resolution mapper shares one crop, the scale distillation loss, the
ScaleAdaptiveClassifier's losses on a tiny backbone, and a CPU SAN config through train_net."""
import json
import math
import os

import cv2
import numpy as np
import pytest
import torch

from detectron2.modeling.backbone import BasicStem, ResNet

from projects.common.data import build_classification_train_loader
from projects.common.modeling import ImageClassifier
from projects.san.data import MultiResolutionClassificationMapper, validation_resize_edge
from projects.san.losses import scale_distillation_loss
from projects.san.modeling import ScaleAdaptiveClassifier

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def image_records(tmp_path_factory):
    """Two 120x160 images with structure at every scale (gradients + a bright square)."""
    folder = tmp_path_factory.mktemp("images")
    records = []
    for index in range(2):
        y, x = np.mgrid[0:120, 0:160]
        image = np.stack([x * 1.5, y * 2.0, (x + y) % 255], axis=2).astype(np.uint8)
        image[30 + 10 * index:70, 40:90] = 250
        path = str(folder / f"{index}.png")
        cv2.imwrite(path, image)
        records.append({"file_name": path, "class_id": index, "height": 120, "width": 160})
    return records


def test_mapper_resizes_one_crop_to_every_resolution(image_records):
    mapper = MultiResolutionClassificationMapper(resolutions=(48, 96, 64), crop_scale=(0.2, 1.0))
    np.random.seed(0)
    outputs = [mapper(image_records[0]) for _ in range(4)]
    for out in outputs:
        assert sorted(out["images_by_resolution"]) == [48, 64, 96] and out["class_id"] == 0
        assert torch.equal(out["image"], out["images_by_resolution"][96])
        largest = out["image"].permute(1, 2, 0).numpy()
        for size in (64, 48):
            image = out["images_by_resolution"][size]
            assert image.dtype == torch.uint8 and image.shape == (3, size, size)
            # an independent downsampling of the largest crop (OpenCV area averaging) agrees
            reference = cv2.resize(largest, (size, size), interpolation=cv2.INTER_AREA)
            difference = np.abs(image.permute(1, 2, 0).numpy().astype(float) - reference)
            assert difference.mean() < 4.0
    # the crop itself is random: different calls give different content
    assert not torch.equal(outputs[0]["image"], outputs[1]["image"])


def test_mapper_feeds_the_classification_train_loader(image_records):
    mapper = MultiResolutionClassificationMapper(resolutions=(32, 24))
    batch = next(iter(build_classification_train_loader(image_records, mapper=mapper, total_batch_size=2)))
    assert len(batch) == 2
    assert {tuple(x["images_by_resolution"][24].shape) for x in batch} == {(3, 24, 24)}


def test_validation_resize_is_floor_of_s_over_0875():
    assert [validation_resize_edge(s) for s in (224, 96, 64, 48, 32)] == [256, 109, 73, 54, 36]


def test_scale_distillation_loss_matches_hand_computation():
    logits = {
        96: torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True),
        64: torch.tensor([[0.0, 0.0], [1.0, 0.0]], requires_grad=True),
        32: torch.tensor([[0.0, 1.0], [0.5, 0.5]], requires_grad=True),
    }

    def softmax(row):
        exp = [math.exp(v) for v in row]
        return [e / sum(exp) for e in exp]

    def kl(teacher, student):  # batch mean of sum_c p log(p / q)
        total = 0.0
        for t_row, s_row in zip(teacher.tolist(), student.tolist()):
            p, q = softmax(t_row), softmax(s_row)
            total += sum(pc * math.log(pc / qc) for pc, qc in zip(p, q))
        return total / len(teacher)

    expected = kl(logits[96], logits[64]) + kl(logits[96], logits[32]) + kl(logits[64], logits[32])
    loss = scale_distillation_loss(logits)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert expected > 0.1

    loss.backward()
    assert logits[96].grad is None  # only ever a teacher: detached
    # 64 receives gradient only as the student of 96, not as the teacher of 32
    student_only = torch.tensor(logits[64].detach().tolist(), requires_grad=True)
    scale_distillation_loss({96: logits[96].detach(), 64: student_only}).backward()
    assert torch.allclose(logits[64].grad, student_only.grad)
    assert logits[32].grad.abs().sum() > 0


def test_scale_distillation_of_one_resolution_is_zero():
    assert scale_distillation_loss({64: torch.randn(3, 5)}).item() == 0.0


def tiny_classifier(cls, **kwargs):
    torch.manual_seed(0)
    backbone = ResNet(
        BasicStem(in_channels=3, out_channels=64, norm="BN"),
        ResNet.make_default_stages(depth=18, norm="BN")[:1],
        out_features=["res2"],
    )
    return cls(backbone=backbone, in_feature="res2", num_classes=3, pixel_mean=[100.0] * 3,
               pixel_std=[50.0] * 3, **kwargs)


def tiny_batch(resolutions=(32, 24, 16)):
    generator = torch.Generator().manual_seed(1)
    return [
        {
            "images_by_resolution": {
                r: torch.randint(0, 256, (3, r, r), generator=generator, dtype=torch.uint8) for r in resolutions
            },
            "class_id": class_id,
        }
        for class_id in (0, 2)
    ]


def test_meta_arch_trains_every_resolution_in_descending_order():
    model = tiny_classifier(ScaleAdaptiveClassifier).train()
    seen_sizes = []
    model.backbone.register_forward_pre_hook(lambda module, args: seen_sizes.append(args[0].shape[-1]))
    batch = tiny_batch((16, 32, 24))
    losses = model(batch)
    assert seen_sizes == [32, 24, 16]
    assert set(losses) == {"loss_ce_32", "loss_ce_24", "loss_ce_16", "loss_scale_distillation"}

    # each cross-entropy is ImageClassifier's loss on that resolution alone
    plain = tiny_classifier(ImageClassifier).train()
    plain.load_state_dict(model.state_dict())
    for r in (32, 24, 16):
        single = plain([{"image": x["images_by_resolution"][r], "class_id": x["class_id"]} for x in batch])
        assert losses[f"loss_ce_{r}"].item() == pytest.approx(single["loss_cls"].item(), rel=1e-5)
    assert losses["loss_scale_distillation"].item() > 0

    sum(losses.values()).backward()
    assert model.fc.weight.grad.abs().sum() > 0 and model.backbone.stem.conv1.weight.grad.abs().sum() > 0


def test_meta_arch_loss_weights():
    batch = tiny_batch()
    reference = tiny_classifier(ScaleAdaptiveClassifier).train()(batch)
    weighted = tiny_classifier(ScaleAdaptiveClassifier, ce_weight=2.0, distillation_weight=0.5).train()(batch)
    for key, value in reference.items():
        factor = 0.5 if key == "loss_scale_distillation" else 2.0
        assert weighted[key].item() == pytest.approx(factor * value.item(), rel=1e-5)


def test_meta_arch_evaluates_any_size_like_image_classifier():
    model = tiny_classifier(ScaleAdaptiveClassifier).eval()
    plain = tiny_classifier(ImageClassifier).eval()
    image = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    with torch.no_grad():
        scores = model([{"image": image}])[0]["scores"]
        assert torch.allclose(scores, plain([{"image": image}])[0]["scores"])
    assert scores.shape == (3,) and scores.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_meta_arch_names_the_mapper_when_inputs_lack_resolutions():
    model = tiny_classifier(ScaleAdaptiveClassifier).train()
    with pytest.raises(KeyError, match="MultiResolutionClassificationMapper"):
        model([{"image": torch.zeros(3, 16, 16, dtype=torch.uint8), "class_id": 0}])


@pytest.mark.slow
def test_cpu_san_config_trains_through_train_net_and_predicts(tmp_path):
    from projects.common import engine

    output_dir = str(tmp_path / "san")
    args = engine.parse_args([
        "--config-file", os.path.join(REPO, "configs/san/san_R18_synthetic_cpu.py"),
        f"train.output_dir={output_dir}", "train.max_iter=3", "train.eval_period=3", "train.log_period=1",
        "train.checkpointer.period=3", "model.backbone.width=0.125", "dataloader.train.total_batch_size=4",
        "dataloader.train.num_workers=0", "dataloader.test.num_workers=0",
    ])
    engine.main(args)
    with open(os.path.join(output_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f]
    training = [r for r in records if "total_loss" in r]
    assert [r["iteration"] for r in training] == [0, 1, 2]
    for key in ("loss_ce_64", "loss_ce_48", "loss_ce_32", "loss_scale_distillation"):
        assert all(math.isfinite(r[key]) for r in training), key
    assert 0.0 <= records[-1]["classification/top1"] <= 100.0

    # the collection's predictor serves the trained SAN model on a raw image
    from detectron2.data import DatasetCatalog

    from projects.common.predictor import LazyPredictor

    predictor = LazyPredictor(engine.load_config(args.config_file, args.opts),
                              checkpoint=os.path.join(output_dir, "model_final.pth"))
    image = cv2.imread(DatasetCatalog.get("synthetic_shapes_cls_val")[0]["file_name"])
    scores = predictor(image)["scores"]
    assert scores.shape == (8,) and scores.sum().item() == pytest.approx(1.0, abs=1e-5)

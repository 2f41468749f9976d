"""Exports of the collection's models (projects.common.export) to TorchScript and ONNX, checked
against the eager models on real photos from COCO128: traced on one photo, compared on another
of a different size (so the export follows the input, not the trace's sample). The models have
random weights whose norm statistics are set from a photo (activations stay in range, so the
detectors detect) and keep every detection (score threshold 0), 100 per image for most.

Tolerances: TorchScript reproduces the eager outputs to 1e-5 (it runs the same kernels: the
differences measured are 0); onnxruntime within ``EXPORT_TOLERANCES`` (0.05 px for boxes, 1e-4
for scores, 1e-3 for mask probabilities, classes and counts equal).
"""
import functools
import json
import os

import cv2
import numpy as np
import pytest
import torch

from detectron2.config import instantiate

from projects.common import export
from projects.common.engine import load_config
from projects.common.export import (
    EXPORT_FORMATS,
    ExportError,
    compare_outputs,
    exceeded_tolerances,
    export_model,
    load_exported_model,
    prepare_for_export,
    run_eager,
    sample_inputs,
)
from projects.common.modeling import ImageClassifier
from projects.resnet_ws import WeaklySupervisedRCNNWithTTA

SAMPLE_PHOTO, CHECK_PHOTO = "000000000009.jpg", "000000000025.jpg"  # 640x480 and 640x426
SAN_RESOLUTION = 48
KEEP_ALL_RCNN = "model.roi_heads.box_predictor.test_score_thresh=0.0"
DETECTION_OUTPUTS = ["instances.pred_boxes", "instances.pred_classes", "instances.scores", "instances.image_size"]

CASES = {  # the TiedResNet Mask R-CNN has the Faster R-CNN's outputs and the masks
    "tied_mask_rcnn": ("tied_conv/synthetic_mask_rcnn_tied_resnet50_fpn_cpu.py", [KEEP_ALL_RCNN]),
    "tied_retinanet": ("tied_conv/synthetic_retinanet_tied_resnet50_fpn_cpu.py", ["model.test_score_thresh=0.0"]),
    "msad_fcos_student": ("msad/synthetic_fcos_student_cpu.py", ["model.detector.test_score_thresh=0.0"]),
    "dap_faster_rcnn": ("dap/synthetic_finetune_faster_rcnn_cpu.py", [KEEP_ALL_RCNN]),
    "san_classifier": ("san/san_R18_synthetic_cpu.py", []),
    # OICR+REG (regressed boxes) with proposal scores as an input: the most inputs and outputs
    "resnet_ws_oicr_reg": ("resnet_ws/synthetic_oicr_reg_R18_WS_cpu.py",
                           ["model.test_score_thresh=0.0", "model.scale_by_proposal_score=True"]),
}


def read_photo(coco128_dir, name, short_edge):
    """A COCO128 photo (BGR) resized to ``short_edge`` pixels on its short side."""
    image = cv2.imread(os.path.join(coco128_dir, "train2017", name))
    scale = short_edge / min(image.shape[:2])
    return cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                      interpolation=cv2.INTER_AREA)


def as_model_input(image_bgr, crop=None):
    """(3, H, W) float32, optionally the centre ``crop`` x ``crop`` (the SAN test crop)."""
    if crop is not None:
        top, left = (image_bgr.shape[0] - crop) // 2, (image_bgr.shape[1] - crop) // 2
        image_bgr = image_bgr[top: top + crop, left: left + crop]
    return torch.as_tensor(np.ascontiguousarray(image_bgr.transpose(2, 0, 1)), dtype=torch.float32)


@functools.lru_cache(maxsize=None)
def prepared_case(case, coco128_dir, norm_statistics_from_input):
    """(model prepared for export, sample inputs, check inputs) of a case, built once."""
    config, overrides = CASES[case]
    cfg = load_config(config, overrides)
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    is_san = case.startswith("san")
    short_edges, crop = ((55, 55), SAN_RESOLUTION) if is_san else ((128, 120), None)  # SAN: its test crop
    sample, check = (as_model_input(read_photo(coco128_dir, name, short_edge), crop)
                     for name, short_edge in zip((SAMPLE_PHOTO, CHECK_PHOTO), short_edges))
    norm_statistics_from_input(model, [{"image": sample}])
    model = prepare_for_export(model, resolution=SAN_RESOLUTION if is_san else None)
    return model, sample_inputs(model, sample), sample_inputs(model, check)


@pytest.mark.parametrize("export_format", EXPORT_FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_export_reproduces_the_eager_model_on_another_photo(case, export_format, coco128_dir, tmp_path,
                                                            norm_statistics_from_input):
    model, sample, check = prepared_case(case, coco128_dir, norm_statistics_from_input)
    record = export_model(model, sample, export_format, str(tmp_path))
    exported = load_exported_model(str(tmp_path))
    assert exported.input_names == list(sample) and os.path.isfile(tmp_path / record["file"])

    expected = run_eager(model, check)
    differences = compare_outputs(expected, exported(check))
    print(f"{case} {export_format}: {differences}")  # the numbers the module docstring states
    if export_format == "torchscript":
        assert max(differences.values()) <= 1e-5, differences
    assert not exceeded_tolerances(differences), differences
    if case.startswith("san"):
        assert record["outputs"] == ["scores"] and expected["scores"].shape == (8,)
        assert list(record["inputs"]["image"]["shape"]) == [3, SAN_RESOLUTION, SAN_RESOLUTION]
    else:
        assert set(DETECTION_OUTPUTS) <= set(record["outputs"])
        assert len(expected["instances.pred_boxes"]) > 10
        assert check["image"].shape != sample["image"].shape  # a different size than the trace's
    if case == "tied_mask_rcnn":
        assert "instances.pred_masks" in record["outputs"]
    if case.startswith("msad") and export_format == "torchscript":  # the teacher stays behind
        parameters = [name for name, _ in torch.jit.load(str(tmp_path / record["file"])).named_parameters()]
        assert parameters and not [name for name in parameters if ".teacher." in name]
    if case.startswith("resnet_ws"):
        assert record["inputs"].keys() == {"image", "proposal_boxes", "objectness_logits"}
        assert len(check["proposal_boxes"]) != len(sample["proposal_boxes"])


def test_san_is_exported_at_a_resolution_and_other_models_refuse_one():
    san = instantiate(load_config("san/san_R18_synthetic_cpu.py").model)
    with pytest.raises(ExportError, match="SAN backbone.*give the resolution to export it at"):
        prepare_for_export(san)
    classifier = instantiate(load_config("smoke/classifier_R18_synthetic.py").model)
    with pytest.raises(ExportError, match="resolution=48 applies to SAN classifiers only"):
        prepare_for_export(classifier, resolution=48)


def test_what_cannot_be_exported_is_named_with_the_reason(tmp_path):
    detector = instantiate(load_config("resnet_ws/synthetic_oicr_R18_WS_cpu.py").model)
    with pytest.raises(ExportError, match="test-time augmentation wrapper WeaklySupervisedRCNNWithTTA.*NumPy"):
        prepare_for_export(WeaklySupervisedRCNNWithTTA(detector))

    detector.proposal_generator = None
    with pytest.raises(ExportError, match="proposals as inputs.*set model.proposal_generator"):
        sample_inputs(detector, torch.zeros(3, 32, 32))

    class CumulativeMaxClassifier(ImageClassifier):
        """A classifier whose scores go through an operator ONNX has no translation for."""

        def forward(self, batched_inputs):
            return [{"scores": torch.cummax(self.logits(batched_inputs)[0], dim=0).values}]

    classifier_cfg = load_config("smoke/classifier_R18_synthetic.py").model
    classifier_cfg._target_ = CumulativeMaxClassifier
    classifier = prepare_for_export(instantiate(classifier_cfg))
    image = {"image": torch.rand(3, 32, 32) * 255}
    with pytest.raises(ExportError, match="cannot export the CumulativeMaxClassifier to ONNX.*aten::cummax"):
        export_model(classifier, image, "onnx", str(tmp_path / "onnx"))
    export_model(classifier, image, "torchscript", str(tmp_path / "ts"))  # TorchScript holds it

    class LabelClassifier(ImageClassifier):
        def forward(self, batched_inputs):
            return [{"label": "cat"}]

    classifier_cfg._target_ = LabelClassifier
    with pytest.raises(ExportError, match="output label is a str, which cannot be exported"):
        export_model(prepare_for_export(instantiate(classifier_cfg)), image, "torchscript", str(tmp_path / "str"))
    with pytest.raises(ValueError, match="'tflite' is not one of"):
        export_model(classifier, image, "tflite", str(tmp_path))


def test_command_line_exports_san_at_the_asked_resolution(coco128_dir, tmp_path, capsys):
    output = tmp_path / "san"
    photo = os.path.join(coco128_dir, "train2017", SAMPLE_PHOTO)
    export.main(["--config-file", "san/san_R18_synthetic_cpu.py", "--format", "onnx", "--output", str(output),
                 "--sample-image", photo, "--resolution", "40", "--allow-random-weights"])
    record = json.loads((output / "export.json").read_text())
    assert record["san_resolution"] == 40 and record["inputs"]["image"]["shape"] == [3, 40, 40]
    assert record["sample_image"] == photo and record["input_format"] == "BGR"
    assert "largest differences from the eager model" in capsys.readouterr().out

    with pytest.raises(ExportError, match="resolution=40 applies to SAN classifiers only"):
        export.main(["--config-file", "smoke/classifier_R18_synthetic.py", "--format", "torchscript",
                     "--output", str(tmp_path / "x"), "--sample-image", photo, "--resolution", "40",
                     "--allow-random-weights"])

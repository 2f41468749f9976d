"""Weights and data that do not fit the model are refused before anything runs: a checkpoint of
another model, or none, for inference and evaluation (a random network gives plausible-looking
outputs) unless asked for; a dataset with another number of classes than the model."""
import pytest
import torch
from torch import nn

from detectron2.checkpoint import DetectionCheckpointer

from projects.common import engine
from projects.common.weights import PartialWeightsError, load_trained_weights


class TwoLayers(nn.Module):
    def __init__(self, outputs=3):
        super().__init__()
        self.first = nn.Linear(4, 5)
        self.second = nn.Linear(5, outputs)


def saved(model, folder, name):
    DetectionCheckpointer(model, save_dir=str(folder)).save(name)
    return str(folder / f"{name}.pth")


def test_complete_weights_load(tmp_path):
    source = TwoLayers()
    target = TwoLayers()
    load_trained_weights(target, saved(source, tmp_path, "same"))
    assert torch.equal(target.second.weight, source.second.weight)


def test_weights_that_leave_parameters_unloaded_are_refused(tmp_path):
    path = saved(TwoLayers(outputs=7), tmp_path, "seven_outputs")
    with pytest.raises(PartialWeightsError) as error:
        load_trained_weights(TwoLayers(), path)
    message = str(error.value)
    assert "seven_outputs.pth leaves 2 parameters of the TwoLayers unloaded" in message
    assert "second.bias" in message and "second.weight: (7, 5) there, (3, 5) here" in message
    assert "--allow-partial-weights" in message
    model = TwoLayers()
    load_trained_weights(model, path, allow_partial=True)  # on purpose: the first layer is loaded
    assert model.first.weight.shape == (5, 4)


def test_no_weights_needs_to_be_asked_for():
    with pytest.raises(ValueError, match="no weights given.*--allow-random-weights"):
        load_trained_weights(TwoLayers(), "")
    load_trained_weights(TwoLayers(), "", allow_random=True)


def test_eval_only_without_weights_is_refused(tmp_path):
    args = engine.parse_args(["--config-file", "smoke/classifier_R18_synthetic.py", "--eval-only",
                              f"train.output_dir={tmp_path}"])
    with pytest.raises(ValueError, match="no weights given"):
        engine.main(args)


def test_a_model_with_another_class_count_than_the_data_is_refused_at_the_start():
    cfg = engine.load_config("smoke/faster_rcnn_R18_FPN_synthetic.py", ["model.roi_heads.num_classes=9"])
    with pytest.raises(ValueError, match=r"'synthetic_shapes_train' \(dataloader.train\) has 8 classes .* the model "
                                         r"predicts 9: .*model.roi_heads.num_classes=8"):
        engine.build_trainer(cfg)


def test_test_classes_named_otherwise_than_the_training_classes_are_reported(caplog):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    name = "synthetic_shapes_val_reversed_names"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: DatasetCatalog.get("synthetic_shapes_val"))
        MetadataCatalog.get(name).set(thing_classes=MetadataCatalog.get("synthetic_shapes_val").thing_classes[::-1])
    cfg = engine.load_config("smoke/faster_rcnn_R18_FPN_synthetic.py", [f"dataloader.test.dataset.names={name}"])
    engine.warn_if_test_classes_differ(cfg)
    assert f"the test dataset '{name}' names its classes" in caplog.text

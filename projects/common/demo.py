"""Run a trained model of any config on images or folders and save the predictions drawn as PNGs
(``d2c-demo``, ``python tools/demo.py``).

    d2c-demo --config-file configs/smoke/faster_rcnn_R18_FPN_synthetic.py \\
        --input datasets/synthetic_shapes_v2/JPEGImages --output output/demo \\
        --opts train.init_checkpoint=output/smoke_faster_rcnn_R18_FPN_synthetic/model_final.pth

Boxes are labelled with the class names of the config's test dataset (any registered dataset).
ResNet-WS detectors make the proposals of each image on the fly (their configs' Selective Search).
"""
import argparse
import glob
import logging
import os

import cv2

from detectron2.utils.visualizer import Visualizer

from .data import dataset_metadata
from .engine import add_weight_arguments, load_config
from .io import write_bytes_atomically
from .predictor import LazyPredictor

__all__ = ["draw", "list_images", "main", "test_dataset_metadata"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(inputs):
    """Image files named directly, inside folders, or matched by glob patterns, in order."""
    files = []
    for item in inputs:
        if os.path.isdir(item):
            files += sorted(f for f in glob.glob(os.path.join(item, "*")) if f.lower().endswith(IMAGE_SUFFIXES))
        else:
            matches = sorted(glob.glob(item))
            if not matches:
                raise FileNotFoundError(f"--input {item!r}: no such file, folder or glob match")
            files += matches
    if not files:
        raise FileNotFoundError(f"--input {inputs}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    return files


def test_dataset_metadata(cfg):
    """Metadata (class names) of the config's test dataset, loaded if the registration left them out."""
    names = cfg.dataloader.test.dataset.names
    return dataset_metadata(names if isinstance(names, str) else names[0])


def draw(image_bgr, outputs, metadata, confidence_threshold, scale=1.0):
    """Draw detections (``instances``) at or above ``confidence_threshold``, or the top-3 classes
    (``scores``), on an RGB canvas ``scale`` times the image size. Returns the canvas and the
    number of detections drawn (None for class scores)."""
    visualizer = Visualizer(image_bgr[:, :, ::-1], metadata, scale=scale)
    if "instances" in outputs:
        instances = outputs["instances"].to("cpu")
        instances = instances[instances.scores >= confidence_threshold]
        return visualizer.draw_instance_predictions(instances).get_image(), len(instances)
    scores = outputs["scores"].to("cpu")
    top = scores.topk(min(3, len(scores)))
    names = metadata.get("thing_classes", [str(i) for i in range(len(scores))])
    text = "\n".join(f"{names[i]} {p:.2f}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
    return visualizer.draw_text(text, (4, 4), horizontal_alignment="left").get_image(), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, help="a config file, or a config's name under configs/")
    parser.add_argument("--input", nargs="+", required=True, help="images, folders or globs")
    parser.add_argument("--output", required=True, help="folder for the PNGs")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--scale", type=float, default=1.0, help="PNG size / image size (2 for small images)")
    add_weight_arguments(parser)
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="key=value overrides")
    args = parser.parse_args(argv)

    cfg = load_config(args.config_file, args.opts)
    predictor = LazyPredictor(cfg, allow_partial_weights=args.allow_partial_weights,
                              allow_random_weights=args.allow_random_weights)
    metadata = test_dataset_metadata(cfg)
    paths = list_images(args.input)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise ValueError(f"several inputs would be written to the same PNG: {clashes[:5]}; "
                         "run the folders one at a time with different --output")
    os.makedirs(args.output, exist_ok=True)
    for path, stem in zip(paths, stems):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read image {path} (missing or not an image)")
        drawn, num_drawn = draw(image, predictor(image), metadata, args.confidence_threshold, args.scale)
        ok, encoded = cv2.imencode(".png", drawn[:, :, ::-1])
        if not ok:
            raise OSError(f"OpenCV could not encode the picture of {path} as PNG")
        out_path = os.path.join(args.output, stem + ".png")
        write_bytes_atomically(out_path, encoded.tobytes())
        if num_drawn == 0:
            print(f"{out_path}: no detection at or above --confidence-threshold {args.confidence_threshold} "
                  "(lower it to see the model's less confident boxes)")
        else:
            print(out_path)


if __name__ == "__main__":
    main()

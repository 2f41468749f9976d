#!/usr/bin/env python
"""Generate a synthetic shapes preset (normally done on first use) and write preview PNGs of it.

    python tools/generate_synthetic_data.py                        # default preset, $DETECTRON2_DATASETS
    python tools/generate_synthetic_data.py --preset synthetic_shapes_occluded --preview 8
    python tools/generate_synthetic_data.py --name tiny_shapes --set num_train_images=40 \
        "object_size_range=[8, 48]"                                 # a custom spec in its own folder
    python tools/generate_synthetic_data.py --overwrite            # replace a folder of another spec

Previews (detection images with boxes and masks drawn by detectron2's Visualizer, and a sheet of
classification images, one row per class) go to ``output/synthetic_previews/<folder>/``.
"""

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.data import MetadataCatalog  # noqa: E402
from detectron2.data.datasets import load_coco_json  # noqa: E402
from detectron2.utils.visualizer import Visualizer  # noqa: E402

from projects.common.data import (  # noqa: E402
    DEFAULT_PRESET,
    PRESETS,
    SpecMismatchError,
    SyntheticSpec,
    datasets_root,
    ensure_generated,
    synthetic_dataset_dir,
)
from projects.common.data.synthetic import CLASSIFICATION_DIR, IMAGE_DIR, coco_json_path  # noqa: E402

CLASSIFICATION_SHEET_COLUMNS = 8


def parse_overrides(assignments):
    """``["field=value", ...]`` -> dict; values are JSON (numbers, lists), else plain strings."""
    overrides = {}
    for assignment in assignments:
        field, separator, text = assignment.partition("=")
        if not separator:
            raise SystemExit(f"--set {assignment!r}: expected FIELD=VALUE, e.g. num_train_images=50")
        try:
            overrides[field] = json.loads(text)
        except json.JSONDecodeError:
            overrides[field] = text
    return overrides


def write_detection_previews(dataset_dir, split, count, out_dir):
    """Draw the first ``count`` images of a split with their COCO boxes and masks."""
    preview_name = f"{os.path.basename(dataset_dir)}_{split}_preview"  # load_coco_json sets its metadata
    json_file = coco_json_path(dataset_dir, split)
    dataset_dicts = load_coco_json(json_file, os.path.join(dataset_dir, IMAGE_DIR), preview_name)
    with open(json_file) as f:
        ratios = {image["id"]: image["occlusion_ratio"] for image in json.load(f)["images"]}
    metadata = MetadataCatalog.get(preview_name)
    paths = []
    for record in dataset_dicts[:count]:
        image = cv2.imread(record["file_name"])
        drawn = Visualizer(image[:, :, ::-1], metadata, scale=2.0).draw_dataset_dict(record)
        stem = os.path.splitext(os.path.basename(record["file_name"]))[0]
        path = os.path.join(out_dir, f"{stem}_occlusion{ratios[record['image_id']]:.2f}.png")
        cv2.imwrite(path, drawn.get_image()[:, :, ::-1])
        paths.append(path)
    return paths


def write_classification_sheet(dataset_dir, spec, split, out_dir):
    """One row per class (in class_names order) of the first classification images."""
    rows = []
    for name in spec.class_names:
        class_dir = os.path.join(dataset_dir, CLASSIFICATION_DIR, split, name)
        files = sorted(os.listdir(class_dir))[:CLASSIFICATION_SHEET_COLUMNS]
        tiles = [cv2.imread(os.path.join(class_dir, file)) for file in files]
        blank = np.zeros((spec.classification_image_size,) * 2 + (3,), np.uint8)
        rows.append(np.hstack(tiles + [blank] * (CLASSIFICATION_SHEET_COLUMNS - len(tiles))))
    path = os.path.join(out_dir, f"classification_{split}.png")
    cv2.imwrite(path, np.vstack(rows))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS), help="spec to start from"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="override spec fields (JSON values), e.g. num_train_images=50 'object_size_range=[8,64]'",
    )
    parser.add_argument(
        "--root", default=datasets_root(), help="datasets root (default: $DETECTRON2_DATASETS or ./datasets)"
    )
    parser.add_argument(
        "--name",
        help="dataset folder prefix (default: the preset name); the folder is <root>/<name>_v<version>",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing folder, even one of another spec"
    )
    parser.add_argument(
        "--preview", type=int, default=0, metavar="N", help="write previews of the first N images"
    )
    parser.add_argument("--preview-split", default="val", choices=["train", "val"])
    parser.add_argument("--preview-dir", help="default: output/synthetic_previews/<folder name>")
    args = parser.parse_args(argv)

    try:
        spec = SyntheticSpec.from_dict({**PRESETS[args.preset].to_dict(), **parse_overrides(args.set)})
    except (TypeError, ValueError) as err:
        raise SystemExit(f"invalid --set: {err}")
    dataset_dir = synthetic_dataset_dir(args.root, args.name or args.preset)
    start = time.perf_counter()
    try:
        ensure_generated(spec, dataset_dir, overwrite=args.overwrite)
    except SpecMismatchError as err:
        raise SystemExit(str(err))
    print(f"{dataset_dir} is ready ({time.perf_counter() - start:.1f} s)")

    if args.preview > 0:
        preview_dir = args.preview_dir or os.path.join(
            "output", "synthetic_previews", os.path.basename(dataset_dir)
        )
        os.makedirs(preview_dir, exist_ok=True)
        paths = write_detection_previews(dataset_dir, args.preview_split, args.preview, preview_dir)
        paths.append(write_classification_sheet(dataset_dir, spec, args.preview_split, preview_dir))
        print("previews:\n  " + "\n  ".join(paths))


if __name__ == "__main__":
    main()

"""Writing a synthetic dataset's files: JPEG images, Pascal VOC XML, COCO JSON and the ImageNet
folder layout of the classification split, then the version stamp that marks the folder complete."""

import json
import os
import xml.etree.ElementTree as ET
from typing import List

import cv2
import numpy as np
from tqdm import tqdm

from .layout import CLASSIFICATION_DIR, IMAGE_DIR, SPLITS, VERSION_FILE, classification_json_path, coco_json_path
from .render import RenderedInstance, render_classification_image, render_detection_image
from .spec import GENERATOR_VERSION, SyntheticSpec, version_stamp

JPEG_QUALITY = 92


def _voc_xml(file_name: str, spec: SyntheticSpec, instances: List[RenderedInstance]) -> bytes:
    """VOC annotation; boxes are 1-based inclusive pixel indices, as in the VOC devkit."""
    annotation = ET.Element("annotation")
    ET.SubElement(annotation, "folder").text = IMAGE_DIR
    ET.SubElement(annotation, "filename").text = file_name
    size = ET.SubElement(annotation, "size")
    for tag, value in (("width", spec.image_width), ("height", spec.image_height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(annotation, "segmented").text = "0"
    for instance in instances:
        obj = ET.SubElement(annotation, "object")
        ET.SubElement(obj, "name").text = spec.class_names[instance.class_index]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        x, y, w, h = instance.bbox
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(annotation)
    return ET.tostring(annotation, encoding="utf-8") + b"\n"


def _write_jpeg(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write image {path}")


def _coco_annotations(instances: List[RenderedInstance], image_id: int, first_id: int) -> List[dict]:
    return [
        {
            "id": first_id + offset,
            "image_id": image_id,
            "category_id": instance.class_index + 1,
            # float boxes: detectron2 transforms int boxes in place and would truncate them
            "bbox": [float(value) for value in instance.bbox],
            "area": instance.area,
            "segmentation": instance.polygons,
            "iscrowd": 0,
        }
        for offset, instance in enumerate(instances)
    ]


def _write_coco_json(path, description, split, images, annotations, spec: SyntheticSpec) -> None:
    coco = {
        "info": {"description": f"{description}, generator v{GENERATOR_VERSION}", "split": split},
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(spec.class_names)
        ],
    }
    with open(path, "w") as f:
        json.dump(coco, f, separators=(",", ":"))


def _write_detection_split(
    spec: SyntheticSpec, out_dir: str, split: str, first_image_id: int, progress
) -> None:
    images, annotations, file_ids = [], [], []
    for index in range(spec.num_train_images if split == "train" else spec.num_val_images):
        rendered = render_detection_image(spec, split, index)
        file_id = f"{split}_{index:06d}"
        file_name = f"{file_id}.jpg"
        _write_jpeg(os.path.join(out_dir, IMAGE_DIR, file_name), rendered.image)
        with open(os.path.join(out_dir, "Annotations", f"{file_id}.xml"), "wb") as f:
            f.write(_voc_xml(file_name, spec, rendered.instances))
        image_id = first_image_id + index
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "height": spec.image_height,
                "width": spec.image_width,
                "occlusion_ratio": round(rendered.occlusion_ratio, 6),
            }
        )
        annotations += _coco_annotations(rendered.instances, image_id, first_id=len(annotations) + 1)
        file_ids.append(file_id)
        progress.update()
    with open(os.path.join(out_dir, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("".join(f"{file_id}\n" for file_id in file_ids))
    _write_coco_json(coco_json_path(out_dir, split), "synthetic shapes", split, images, annotations, spec)


def _write_classification_split(spec: SyntheticSpec, out_dir: str, split: str, progress) -> None:
    """Images in ImageNet folder layout, and their boxes in ``classification/instances_<split>.json``
    (COCO; ``file_name`` relative to ``classification/<split>``)."""
    per_class = spec.classification_train_per_class if split == "train" else spec.classification_val_per_class
    images, annotations = [], []
    for class_index, name in enumerate(spec.class_names):
        class_dir = os.path.join(out_dir, CLASSIFICATION_DIR, split, name)
        os.makedirs(class_dir)
        for index in range(per_class):
            rendered = render_classification_image(spec, split, class_index, index)
            file_name = f"{name}/{name}_{index:05d}.jpg"
            _write_jpeg(os.path.join(out_dir, CLASSIFICATION_DIR, split, file_name), rendered.image)
            image_id = len(images) + 1
            size = spec.classification_image_size
            images.append({"id": image_id, "file_name": file_name, "height": size, "width": size, "class_id": class_index})
            annotations += _coco_annotations(rendered.instances, image_id, first_id=len(annotations) + 1)
            progress.update()
    _write_coco_json(classification_json_path(out_dir, split), "synthetic shapes classification", split,
                     images, annotations, spec)


def write_dataset(spec: SyntheticSpec, out_dir: str, name: str) -> None:
    """Write the whole dataset into the new folder ``out_dir`` (not atomic: see ensure_generated)."""
    for sub_dir in (IMAGE_DIR, "Annotations", os.path.join("ImageSets", "Main"), "annotations"):
        os.makedirs(os.path.join(out_dir, sub_dir))
    num_classification = len(spec.class_names) * (
        spec.classification_train_per_class + spec.classification_val_per_class
    )
    total = spec.num_train_images + spec.num_val_images + num_classification
    with tqdm(total=total, desc=f"Generating {name}", unit="img") as progress:
        _write_detection_split(spec, out_dir, "train", 1, progress)
        _write_detection_split(spec, out_dir, "val", spec.num_train_images + 1, progress)
        for split in SPLITS:
            _write_classification_split(spec, out_dir, split, progress)
    with open(os.path.join(out_dir, VERSION_FILE), "w") as f:  # last: marks the folder complete
        json.dump(version_stamp(spec), f, indent=2, sort_keys=True)
        f.write("\n")

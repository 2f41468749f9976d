"""
The DAP authors' low-data split files -> split files of our k-shot datasets (``--from dap-split``).

The authors share "JSON annotation files of the VOC and COCO low-data splits used for Figure 3,4"
on Google Drive only (not in their repository): COCO-format annotation files (``images``,
``annotations``, ``categories``) of the selected images. Our k-shot dataset
``{base}_{k}shot_seed{seed}`` (``dap.register_k_shot_dataset``) reads the images of
``{split_dir}/{base}_{k}shot_seed{seed}.json``, ``{"base", "k", "seed", "image_ids",
"images_per_class"}``, when that file exists, and keeps every annotation of those images from the
base dataset. Image ids: detectron2 names a VOC image by its file stem (``000005``,
``2008_000002``) and a COCO image by its ``id``; ``seed`` numbers the authors' splits of one k.
"""
import logging
import os
from collections import Counter
from typing import Dict, List

from ..io import read_json, write_json_atomically

logger = logging.getLogger(__name__)


def _image_ids(coco: Dict, by_file_stem: bool) -> List:
    images = coco.get("images")
    if not isinstance(images, list) or not images:
        raise ValueError("the split file has no 'images' list: a DAP low-data split is a COCO-format annotation file")
    if by_file_stem:
        return [os.path.splitext(os.path.basename(image["file_name"]))[0] for image in images]
    return [image["id"] for image in images]


def _images_per_class(coco: Dict) -> Dict[str, int]:
    names = {category["id"]: category["name"] for category in coco.get("categories", [])}
    images_of_class = Counter()
    for category_id, image_id in {(a["category_id"], a["image_id"]) for a in coco.get("annotations", [])}:
        images_of_class[names.get(category_id, str(category_id))] += 1
    return {name: images_of_class[name] for name in names.values()}


def convert_dap_split(input_path: str, output_dir: str, base: str, k: int, seed: int) -> str:
    """Write the authors' split ``input_path`` as our split of ``{base}_{k}shot_seed{seed}`` in
    ``output_dir`` (``$DETECTRON2_DATASETS/dap_splits`` is where the DAP configs look); its path."""
    if k < 1 or seed < 0:
        raise ValueError(f"k={k} and seed={seed}: k is the images per class (>= 1), seed numbers the split (>= 0)")
    coco = read_json(input_path)
    by_file_stem = base.startswith("voc")
    image_ids = _image_ids(coco, by_file_stem)
    split = {"base": base, "k": k, "seed": seed, "image_ids": image_ids, "images_per_class": _images_per_class(coco)}
    path = os.path.join(output_dir, f"{base}_{k}shot_seed{seed}.json")
    write_json_atomically(path, split, indent=1)
    logger.info("Wrote %s: %d images (ids by %s), images per class %s", path, len(image_ids),
                "file stem" if by_file_stem else "COCO id", split["images_per_class"])
    return path

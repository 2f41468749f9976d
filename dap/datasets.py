"""
Datasets of DAP's steps 3 and 4: pseudo-box detection sets and k-shot fine-tuning subsets.

* ``register_pseudo_box_dataset(name, json_file, image_root)`` registers the COCO-format JSON of
  ``python -m dap.generate_pseudo_boxes`` as a detectron2 dataset; configs call it at import.
* ``register_k_shot_dataset(base_name, k, seed, split_dir)`` registers the low-data subset
  ``{base_name}_{k}shot_seed{seed}`` of a detection dataset (the paper's k in 5, 10, 20, 50, 100;
  any positive k works). The authors' split files are not public, so ours are sampled with
  ``sample_k_shot`` and saved as ``{split_dir}/{name}.json`` on first use; every later run, on
  any machine given the same file, trains on exactly those images.

**What "k images per class" means here.** Classes are visited in a seeded order; for each
class, images containing it are added in a seeded order until at least k selected images contain
it, counting images already selected for other classes. A selected image keeps *all* its
annotations, of every class (no annotation is removed, so no object becomes unlabelled
background). A class can therefore end up in more than k images: up to k from its own turn plus
any brought in by other classes' images (``images_per_class`` in the split file gives the actual
counts). A class with fewer than k images takes all it has, with a logged warning.
"""
import functools
import logging
import numbers
import os
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json

from projects.common.io import read_json, write_json_atomically

__all__ = ["register_k_shot_dataset", "register_k_shot_datasets", "register_pseudo_box_dataset", "sample_k_shot"]

logger = logging.getLogger(__name__)

PSEUDO_BOX_COMMAND = "python -m dap.generate_pseudo_boxes"
# Metadata a k-shot subset shares with its base. json_file (and VOC's dirname/split/year) are not
# copied: an evaluator reading them would score the whole base set instead of the subset; without
# json_file, detectron2's COCOEvaluator converts the subset's own dicts.
K_SHOT_METADATA_KEYS = (
    "thing_classes",
    "thing_dataset_id_to_contiguous_id",
    "thing_colors",
    "evaluator_type",
    "image_root",
)

_PSEUDO_BOX_DATASETS: Dict[str, Tuple] = {}  # name -> registration arguments
_K_SHOT_DATASETS: Dict[str, Tuple] = {}  # name -> registration arguments


# ---------------------------------------------------------------------------------------------
# Pseudo-box datasets


def _json_category_names(json_file: str) -> List[str]:
    """Category names of a COCO JSON in id order (the contiguous ids ``load_coco_json`` assigns)."""
    coco = read_json(json_file)
    if not coco.get("categories"):
        raise ValueError(f"{json_file} has no 'categories': it is not a COCO detection JSON of {PSEUDO_BOX_COMMAND}")
    return [category["name"] for category in sorted(coco["categories"], key=lambda category: category["id"])]


def _load_pseudo_boxes(name: str, json_file: str, image_root: str, made_by: str) -> List[dict]:
    if not os.path.isfile(json_file):
        raise FileNotFoundError(
            f"the pseudo-box file {json_file!r} of dataset {name!r} does not exist "
            f"(absolute: {os.path.abspath(json_file)}): make it with `{made_by} ... "
            f"--output {json_file}`, or register the dataset with the file's actual path"
        )
    try:
        return load_coco_json(json_file, image_root, name)
    except AssertionError as err:
        if "cannot be set to a different value" not in str(err):
            raise
        raise ValueError(
            f"the categories of {json_file} differ from the metadata of dataset {name!r} ({err}): "
            "pass thing_classes=None to register_pseudo_box_dataset to take them from the file, or "
            "the file's category names in id order; a file regenerated with other classes needs a "
            "new process or a new dataset name"
        ) from err


def register_pseudo_box_dataset(
    name: str,
    json_file: str,
    image_root: str,
    thing_classes: Optional[Sequence[str]] = None,
    made_by: str = PSEUDO_BOX_COMMAND,
) -> None:
    """
    Register the COCO-format pseudo-box JSON ``json_file`` (images under ``image_root``) as
    detection dataset ``name``, loaded lazily with ``load_coco_json``; metadata: ``json_file``,
    ``image_root``, ``evaluator_type="coco"`` and ``thing_classes``.

    ``thing_classes`` defaults to the JSON's category names, read here once if the file exists
    (else when the dataset is loaded). Reading parses the whole file: for an ImageNet-scale JSON
    (millions of boxes, GBs) that is minutes and GBs of memory in every process that imports the
    config, so pass ``thing_classes`` (the category names in id order) for huge files.

    Registering the same name again with the same arguments does nothing; with other arguments
    it is an error. A missing JSON is reported when the dataset is loaded, naming ``made_by``,
    the command that writes it (e.g. ``python -m dap.self_training`` for self-training labels).
    """
    arguments = (json_file, image_root, None if thing_classes is None else tuple(thing_classes), made_by)
    if name in _PSEUDO_BOX_DATASETS:
        if _PSEUDO_BOX_DATASETS[name] == arguments:
            return
        raise ValueError(
            f"pseudo-box dataset {name!r} is already registered with (json_file, image_root, "
            f"thing_classes, made_by)={_PSEUDO_BOX_DATASETS[name]}, not {arguments}: register it under another name"
        )
    if name in DatasetCatalog.list():
        raise ValueError(f"dataset name {name!r} is already taken by another dataset: choose another name")
    if thing_classes is None and os.path.isfile(json_file):
        thing_classes = _json_category_names(json_file)
    DatasetCatalog.register(name, functools.partial(_load_pseudo_boxes, name, json_file, image_root, made_by))
    metadata = MetadataCatalog.get(name)
    metadata.set(
        json_file=json_file,
        image_root=image_root,
        evaluator_type="coco",
        missing_file_hint=f"Make it with `{made_by} ... --output {json_file}`.",
    )
    if thing_classes is not None:
        metadata.set(thing_classes=list(thing_classes))
    _PSEUDO_BOX_DATASETS[name] = arguments


# ---------------------------------------------------------------------------------------------
# k-shot subsets


def _check_k_and_seed(k, seed) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k={k!r}: the number of images per class must be a positive int (e.g. 5, 10, 20, 50, 100)")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r}: use a non-negative int")


def sample_k_shot(dataset_dicts: Sequence[dict], k: int, seed: int) -> list:
    """
    Image ids of a k-shot subset of detectron2 dataset dicts: classes in a seeded order, each
    topped up with its images (seeded order) until at least ``k`` selected images contain it.
    Selected images keep all their annotations, so a class can be in more than k of them; a
    class with fewer than k images gets all of them (logged). Returned in selection order.
    """
    _check_k_and_seed(k, seed)
    image_ids = [record["image_id"] for record in dataset_dicts]
    duplicates = sorted((image_id for image_id, count in Counter(image_ids).items() if count > 1), key=str)
    if duplicates:
        raise ValueError(f"image ids occur more than once: {duplicates[:10]}; every image needs its own image_id")
    classes_of_image = [{annotation["category_id"] for annotation in record.get("annotations", [])}
                        for record in dataset_dicts]
    images_of_class = defaultdict(list)
    for index, classes in enumerate(classes_of_image):
        for class_id in classes:
            images_of_class[class_id].append(index)
    if not images_of_class:
        raise ValueError(f"none of the {len(dataset_dicts)} images has annotations: k-shot sampling needs a detection dataset")

    rng = np.random.default_rng(seed)
    selected: List[int] = []
    selected_indices = set()
    selected_per_class = Counter()
    for class_id in rng.permutation(sorted(images_of_class)).tolist():
        candidates = images_of_class[class_id]
        if len(candidates) < k:
            logger.warning("class %s is in only %d images (< k=%d): all of them are taken", class_id, len(candidates), k)
        for index in rng.permutation(candidates).tolist():
            if selected_per_class[class_id] >= k:
                break
            if index in selected_indices:
                continue
            selected.append(index)
            selected_indices.add(index)
            selected_per_class.update(classes_of_image[index])
    return [image_ids[index] for index in selected]


def _images_per_class(dataset_dicts: Sequence[dict], image_ids, thing_classes: Sequence[str]) -> Dict[str, int]:
    """Number of the selected images that contain each class (by class name)."""
    selected = set(image_ids)
    counts = Counter()
    for record in dataset_dicts:
        if record["image_id"] in selected:
            counts.update({annotation["category_id"] for annotation in record.get("annotations", [])})
    return {class_name: counts[class_id] for class_id, class_name in enumerate(thing_classes)}


def _read_split(split_file: str, base_name: str, k: int, seed: int) -> dict:
    split = read_json(split_file)
    saved = {key: split.get(key) for key in ("base", "k", "seed")}
    expected = {"base": base_name, "k": k, "seed": seed}
    if saved != expected:
        raise ValueError(
            f"the split file {split_file} was made for {saved}, not {expected}: delete it to resample, "
            "or pass another split_dir"
        )
    return split


def _copy_base_metadata(base_name: str, name: str) -> None:
    base = MetadataCatalog.get(base_name)
    MetadataCatalog.get(name).set(**{key: base.get(key) for key in K_SHOT_METADATA_KEYS if base.get(key) is not None})


def _load_k_shot(name: str, base_name: str, k: int, seed: int, split_file: str) -> List[dict]:
    base_dicts = DatasetCatalog.get(base_name)
    _copy_base_metadata(base_name, name)  # loading may have added metadata (load_coco_json's id map)
    if os.path.exists(split_file):
        split = _read_split(split_file, base_name, k, seed)
    else:
        image_ids = sample_k_shot(base_dicts, k, seed)
        images_per_class = _images_per_class(base_dicts, image_ids, MetadataCatalog.get(base_name).thing_classes)
        for class_name, count in images_per_class.items():
            if count == 0:
                logger.warning("%s: class %r has no annotated image in %s", name, class_name, base_name)
        split = {"base": base_name, "k": k, "seed": seed, "image_ids": image_ids, "images_per_class": images_per_class}
        write_json_atomically(split_file, split, indent=1)
        logger.info("Wrote the %d-image split %s: images per class %s", len(image_ids), split_file, images_per_class)
    wanted = set(split["image_ids"])
    subset = [record for record in base_dicts if record["image_id"] in wanted]
    if len(subset) != len(wanted):
        missing = sorted(wanted - {record["image_id"] for record in subset}, key=str)
        raise ValueError(
            f"{split_file} lists {len(missing)} images that {base_name!r} does not have (first: {missing[:10]}): "
            "the base dataset changed since the split was made; delete the file to resample"
        )
    return subset


def register_k_shot_dataset(base_name: str, k: int, seed: int, split_dir: str) -> str:
    """
    Register and return ``f"{base_name}_{k}shot_seed{seed}"``: the dicts of the registered
    detection dataset ``base_name`` for the images of the split
    ``{split_dir}/{name}.json`` (``{"base", "k", "seed", "image_ids", "images_per_class"}``),
    sampled with ``sample_k_shot`` and written atomically on first load, read afterwards; a
    saved split made for another base/k/seed is an error. Metadata: ``K_SHOT_METADATA_KEYS`` of
    the base. Registering the same name again with the same split_dir does nothing.
    """
    _check_k_and_seed(k, seed)
    k, seed = int(k), int(seed)  # numpy ints would not go into the split JSON
    name = f"{base_name}_{k}shot_seed{seed}"
    arguments = (base_name, k, seed, split_dir)
    if name in _K_SHOT_DATASETS:
        if _K_SHOT_DATASETS[name] == arguments:
            return name
        raise ValueError(
            f"k-shot dataset {name!r} is already registered with split_dir={_K_SHOT_DATASETS[name][3]!r}, "
            f"not {split_dir!r}: use one split_dir per process"
        )
    if base_name not in DatasetCatalog.list():
        raise KeyError(f"base dataset {base_name!r} is not registered: register it before its k-shot subsets")
    if name in DatasetCatalog.list():
        raise ValueError(f"dataset name {name!r} is already taken by another dataset")
    split_file = os.path.join(split_dir, f"{name}.json")
    DatasetCatalog.register(name, functools.partial(_load_k_shot, name, base_name, k, seed, split_file))
    _copy_base_metadata(base_name, name)
    _K_SHOT_DATASETS[name] = arguments
    return name


PAPER_SHOTS = (5, 10, 20, 50, 100)  # images per class of the paper's low-data settings (Fig. 3/4)
SPLIT_SEEDS = (0, 1, 2)


def register_k_shot_datasets(
    base_name: str, shots: Sequence[int] = PAPER_SHOTS, seeds: Sequence[int] = SPLIT_SEEDS, split_dir: Optional[str] = None
) -> List[str]:
    """``register_k_shot_dataset`` for every k of ``shots`` and seed of ``seeds`` (sampling is lazy,
    so this is cheap); ``split_dir`` defaults to ``$DETECTRON2_DATASETS/dap_splits``, next to the data."""
    from projects.common.data import datasets_root

    split_dir = split_dir if split_dir is not None else os.path.join(datasets_root(), "dap_splits")
    return [register_k_shot_dataset(base_name, k, seed, split_dir) for k in shots for seed in seeds]

"""
Dataset registration and availability checks.

Importing this module registers, under stable names (root = $DETECTRON2_DATASETS, default
"datasets", like detectron2's builtin datasets):

* every synthetic preset of ``synthetic.PRESETS`` (e.g. prefix ``synthetic_shapes``):
  ``{prefix}_train/_val`` (COCO: boxes + polygon masks), ``{prefix}_voc_train/_val`` (Pascal VOC
  layout) and ``{prefix}_cls_train/_val`` (classification); generated on first use;
* ``imagenet_train`` / ``imagenet_val``: ImageNet folders at ``<root>/imagenet/{train,val}``.

Real detection datasets keep detectron2's builtin names (``coco_2017_train``,
``voc_2007_trainval``, ...). ``check_dataset_available`` and the ``get_*_dataset_dicts``
functions turn a wrong name, missing files or a truncated annotation file into errors that say
what was looked for and how to fix it.
"""

import difflib
import functools
import itertools
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union


from detectron2.data import DatasetCatalog, MetadataCatalog  # importing it registers the builtin datasets
from detectron2.data import get_detection_dataset_dicts as _detectron2_get_detection_dataset_dicts
from detectron2.data.build import check_metadata_consistency
from detectron2.data.datasets import load_coco_json, register_pascal_voc
from detectron2.data.datasets.pascal_voc import load_voc_instances
from detectron2.structures import BoxMode

from ..io import read_json
from .synthetic import (
    CLASSIFICATION_DIR,
    DEFAULT_PRESET,
    IMAGE_DIR,
    PRESETS,
    SPLITS,
    SyntheticSpec,
    classification_json_path,
    coco_json_path,
    ensure_generated,
    synthetic_dataset_dir,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # compared in lower case, so ".JPEG" counts too

_SYNTHETIC_DATASETS: Dict[str, Tuple[SyntheticSpec, str]] = {}  # dataset name -> (spec, folder)
_SYNTHETIC_PREFIXES: Dict[str, Tuple[SyntheticSpec, str]] = {}  # prefix -> (spec, folder)

_DOWNLOAD_HINTS = (
    # (dataset name prefix, what to put where; {root} is the datasets root)
    ("coco_", "Download COCO (train2017/, val2017/ and annotations/) and place it at {root}/coco/"),
    ("voc_", "Download PASCAL VOC (VOCdevkit) and place VOC2007/ and VOC2012/ at {root}/"),
    (
        "imagenet_",
        "Place ImageNet's train/ and val/ folders (one sub-folder of images per class) at {root}/imagenet/",
    ),
)


def datasets_root() -> str:
    """Folder holding all datasets: $DETECTRON2_DATASETS, else "datasets" (relative to the cwd)."""
    return os.getenv("DETECTRON2_DATASETS", "datasets")


# ---------------------------------------------------------------------------------------------
# Synthetic datasets


def _load_synthetic_coco(spec: SyntheticSpec, dataset_dir: str, split: str, name: str) -> List[dict]:
    """COCO dicts of a synthetic split, each with the image's ``occlusion_ratio``."""
    ensure_generated(spec, dataset_dir)
    json_file = coco_json_path(dataset_dir, split)
    dataset_dicts = load_coco_json(json_file, os.path.join(dataset_dir, IMAGE_DIR), name)
    ratios = {image["id"]: image["occlusion_ratio"] for image in read_json(json_file)["images"]}
    for record in dataset_dicts:
        record["occlusion_ratio"] = ratios[record["image_id"]]
    return dataset_dicts


def _load_synthetic_voc(spec: SyntheticSpec, dataset_dir: str, split: str) -> List[dict]:
    ensure_generated(spec, dataset_dir)
    return load_voc_instances(dataset_dir, split, list(spec.class_names))


def _load_synthetic_classification(spec: SyntheticSpec, dataset_dir: str, split: str) -> List[dict]:
    """Classification dicts that also carry the boxes of the image's shapes as ``annotations``
    (detectron2 format), for scoring weakly supervised localisation; classifiers ignore them."""
    ensure_generated(spec, dataset_dir)
    dataset_dicts, _ = load_image_folder(
        os.path.join(dataset_dir, CLASSIFICATION_DIR, split), spec.class_names
    )
    coco = read_json(classification_json_path(dataset_dir, split))
    file_names = {image["id"]: image["file_name"] for image in coco["images"]}
    annotations = {file_name: [] for file_name in file_names.values()}
    for annotation in coco["annotations"]:
        annotations[file_names[annotation["image_id"]]].append(
            {
                "bbox": annotation["bbox"],
                "bbox_mode": BoxMode.XYWH_ABS,
                "category_id": annotation["category_id"] - 1,
                "iscrowd": 0,
            }
        )
    size = spec.classification_image_size  # every generated classification image is square
    for record in dataset_dicts:
        file_name = record["image_id"] + ".jpg"  # image_id is "<class>/<file stem>"
        record.update(height=size, width=size, annotations=annotations[file_name])
    return dataset_dicts


def register_synthetic_dataset(prefix: str, spec: SyntheticSpec, root: Optional[str] = None) -> List[str]:
    """
    Register the synthetic dataset of ``spec`` in ``<root>/<prefix>_v<generator version>``
    (root defaults to ``datasets_root()``); its files are generated on first use. Returns the
    names ``{prefix}_{train,val}`` (COCO), ``{prefix}_voc_{train,val}``, ``{prefix}_cls_{train,val}``.
    Registering the same prefix again is a no-op if spec and root are the same, else an error.
    """
    dataset_dir = synthetic_dataset_dir(root if root is not None else datasets_root(), prefix)
    names = [f"{prefix}{kind}_{split}" for kind in ("", "_voc", "_cls") for split in SPLITS]
    if prefix in _SYNTHETIC_PREFIXES:
        if _SYNTHETIC_PREFIXES[prefix] == (spec, dataset_dir):
            return names
        raise ValueError(
            f"synthetic prefix {prefix!r} is already registered with another spec or root "
            f"({_SYNTHETIC_PREFIXES[prefix][1]}): register this spec under another prefix"
        )
    class_names = list(spec.class_names)
    for split in SPLITS:
        coco_name, voc_name, classification_name = (
            f"{prefix}{kind}_{split}" for kind in ("", "_voc", "_cls")
        )
        DatasetCatalog.register(
            coco_name, functools.partial(_load_synthetic_coco, spec, dataset_dir, split, coco_name)
        )
        MetadataCatalog.get(coco_name).set(
            json_file=coco_json_path(dataset_dir, split),
            image_root=os.path.join(dataset_dir, IMAGE_DIR),
            evaluator_type="coco",
            thing_classes=class_names,
        )
        register_pascal_voc(voc_name, dataset_dir, split, 2007, class_names=class_names)
        # keep register_pascal_voc's metadata, but load through a function that generates first
        DatasetCatalog.remove(voc_name)
        DatasetCatalog.register(voc_name, functools.partial(_load_synthetic_voc, spec, dataset_dir, split))
        MetadataCatalog.get(voc_name).set(evaluator_type="pascal_voc")
        DatasetCatalog.register(
            classification_name, functools.partial(_load_synthetic_classification, spec, dataset_dir, split)
        )
        MetadataCatalog.get(classification_name).set(
            image_root=os.path.join(dataset_dir, CLASSIFICATION_DIR, split),
            evaluator_type="classification",
            thing_classes=class_names,
        )
    _SYNTHETIC_PREFIXES[prefix] = (spec, dataset_dir)
    _SYNTHETIC_DATASETS.update({name: (spec, dataset_dir) for name in names})
    return names


def registered_synthetic_datasets() -> List[str]:
    """Names of all registered synthetic datasets (they need no download)."""
    return sorted(_SYNTHETIC_DATASETS)


# ---------------------------------------------------------------------------------------------
# Image folders (ImageNet layout)


def load_image_folder(root: str, class_names: Optional[Sequence[str]] = None) -> Tuple[List[dict], List[str]]:
    """
    Classification dicts of ``root/<class>/*.{jpg,jpeg,png}`` (any case) and the class names.
    Classes are ``class_names`` if given (each must be a sub-folder), else the sorted sub-folder
    names; ``class_id`` is the index in that list. Each dict has ``file_name``, ``image_id``
    ("<class>/<file stem>") and ``class_id``; ``height``/``width`` are filled in by the mapper when
    it reads the image (opening 1.28M ImageNet files here would take minutes).
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist (expected {root}/<class>/<image>)")
    sub_folders = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    class_names = list(class_names) if class_names is not None else sub_folders
    missing = sorted(set(class_names) - set(sub_folders))
    if not class_names or missing:
        raise FileNotFoundError(
            f"image folder {root!r} has no class sub-folder for {missing or 'any class'}; expected "
            f"one sub-folder of images per class, {root}/<class>/<image>"
        )
    dataset_dicts = []
    for class_id, class_name in enumerate(class_names):
        class_dir = os.path.join(root, class_name)
        for file_name in sorted(os.listdir(class_dir)):
            stem, extension = os.path.splitext(file_name)
            if extension.lower() not in IMAGE_EXTENSIONS:
                continue
            dataset_dicts.append(
                {
                    "file_name": os.path.join(class_dir, file_name),
                    "image_id": f"{class_name}/{stem}",
                    "class_id": class_id,
                }
            )
    if not dataset_dicts:
        raise FileNotFoundError(
            f"image folder {root!r} has no {'/'.join(IMAGE_EXTENSIONS)} images in its class sub-folders"
        )
    return dataset_dicts, class_names


def _load_registered_image_folder(name: str, root: str) -> List[dict]:
    dataset_dicts, class_names = load_image_folder(root)
    MetadataCatalog.get(name).set(thing_classes=class_names)
    return dataset_dicts


def register_imagenet_folder(name: str, root: str) -> None:
    """Register an ImageNet-style folder ``root/<class>/<image>`` as classification dataset ``name``;
    ``thing_classes`` (sorted folder names) is set in the metadata when it is loaded."""
    DatasetCatalog.register(name, functools.partial(_load_registered_image_folder, name, root))
    MetadataCatalog.get(name).set(image_root=root, evaluator_type="classification")


# ---------------------------------------------------------------------------------------------
# Availability checks


def _unknown_dataset_message(name: str) -> str:
    close_matches = difflib.get_close_matches(name, DatasetCatalog.list(), n=5, cutoff=0.6)
    return (
        f"Dataset {name!r} is not registered. Close matches: {close_matches or 'none'}. Synthetic "
        f"datasets (no download needed): {registered_synthetic_datasets()}. Other data must be "
        "registered first (DatasetCatalog.register, register_synthetic_dataset or register_imagenet_folder)."
    )


def _missing_dataset_message(name: str, key: str, path: str) -> str:
    absolute = "" if os.path.isabs(path) else f" (absolute: {os.path.abspath(path)})"
    made_by_us = MetadataCatalog.get(name).get("missing_file_hint")  # files a tool of ours writes
    if made_by_us:
        return f"Dataset {name!r} is not on disk: its {key} {path!r}{absolute} does not exist. {made_by_us}"
    root = datasets_root()
    hint = next(
        (text.format(root=root) for prefix, text in _DOWNLOAD_HINTS if name.startswith(prefix)),
        "Put the dataset where this path points (detectron2's datasets/README.md gives the layouts)",
    )
    env = os.getenv("DETECTRON2_DATASETS")
    env_text = (
        f"DETECTRON2_DATASETS={env!r}"
        if env is not None
        else (f"DETECTRON2_DATASETS is not set, so datasets are looked for in ./datasets under {os.getcwd()}")
    )
    return (
        f"Dataset {name!r} is not on disk: its {key} {path!r}{absolute} does not exist; {env_text}. "
        f"{hint}, or set DETECTRON2_DATASETS to the folder that holds it. To run without downloads "
        f"use a synthetic dataset, e.g. {DEFAULT_PRESET}_train (detection) or {DEFAULT_PRESET}_cls_train "
        "(classification)."
    )


def check_dataset_available(name: str) -> None:
    """
    Raise KeyError (with close matches) if ``name`` is not registered, FileNotFoundError naming
    the path if its files (metadata json_file / image_root / dirname) are missing, with the
    metadata's ``missing_file_hint`` as the fix when the dataset's registration gives one. Synthetic
    datasets are generated here if needed, so their json_file exists for evaluators afterwards.
    """
    if name not in DatasetCatalog.list():
        raise KeyError(_unknown_dataset_message(name))
    if name in _SYNTHETIC_DATASETS:
        ensure_generated(*_SYNTHETIC_DATASETS[name])
        return
    metadata = MetadataCatalog.get(name)
    for key in ("json_file", "image_root", "dirname"):
        path = metadata.get(key)
        if (
            path is not None and "://" not in str(path) and not os.path.exists(path)
        ):  # URLs: left to PathManager
            raise FileNotFoundError(_missing_dataset_message(name, key, str(path)))


def dataset_metadata(name: str):
    """``MetadataCatalog.get(name)`` with its ``thing_classes`` filled in. detectron2's
    ``register_coco_instances`` sets them only when the dataset is first loaded, so a user's COCO
    dataset would be labelled "0", "1", ... by whoever reads its metadata first; a dataset that has
    none yet is loaded once here (an unknown name or missing files raise ``check_dataset_available``'s
    errors)."""
    metadata = MetadataCatalog.get(name)
    if metadata.get("thing_classes") is None:
        check_dataset_available(name)
        DatasetCatalog.get(name)
    return metadata


def dataset_thing_classes(name: str) -> List[str]:
    """The class names of a registered dataset (see ``dataset_metadata``), or an error saying how
    to provide them."""
    thing_classes = dataset_metadata(name).get("thing_classes")
    if thing_classes is None:
        raise ValueError(
            f"dataset {name!r} has no thing_classes in its MetadataCatalog entry, not even after loading "
            f"it: set them with MetadataCatalog.get({name!r}).set(thing_classes=[...])"
        )
    return list(thing_classes)


def _invalid_json_files(names: Sequence[str]) -> List[str]:
    """Annotation files of ``names`` that do not parse as JSON."""
    invalid = []
    for name in names:
        json_file = MetadataCatalog.get(name).get("json_file")
        if json_file is None:
            continue
        try:
            with open(json_file) as f:
                json.load(f)
        except ValueError:
            invalid.append(json_file)
    return invalid


def get_detection_dataset_dicts(
    names: Union[str, Sequence[str]],
    filter_empty: bool = True,
    min_keypoints: int = 0,
    proposal_files: Optional[Sequence[str]] = None,
    check_consistency: bool = True,
) -> List[dict]:
    """``detectron2.data.get_detection_dataset_dicts`` after ``check_dataset_available`` on each
    name; an annotation file that is not valid JSON raises a ValueError naming it."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        check_dataset_available(name)
    try:
        return _detectron2_get_detection_dataset_dicts(
            names,
            filter_empty=filter_empty,
            min_keypoints=min_keypoints,
            proposal_files=proposal_files,
            check_consistency=check_consistency,
        )
    except json.JSONDecodeError as err:
        invalid = _invalid_json_files(names) or [f"an annotation file of {names}"]
        raise ValueError(
            f"{', '.join(invalid)} is not valid JSON ({err}): the file is probably truncated "
            "(interrupted download?). Download it again, or delete it if it belongs to a synthetic "
            "dataset folder (delete the folder) so that it is regenerated."
        ) from err


def get_classification_dataset_dicts(names: Union[str, Sequence[str]]) -> List[dict]:
    """Concatenated dicts of classification datasets, checked like ``get_detection_dataset_dicts``;
    all datasets must have the same ``thing_classes``."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        check_dataset_available(name)
        evaluator_type = MetadataCatalog.get(name).get("evaluator_type")
        if evaluator_type != "classification":
            raise ValueError(
                f"Dataset {name!r} is not a classification dataset (evaluator_type={evaluator_type!r}); "
                f"use e.g. {DEFAULT_PRESET}_cls_train / _cls_val or imagenet_train / imagenet_val"
            )
    dataset_dicts = [DatasetCatalog.get(name) for name in names]
    for name, dicts in zip(names, dataset_dicts):
        if not dicts:
            raise ValueError(f"Dataset {name!r} is empty")
    if len(names) > 1:
        check_metadata_consistency("thing_classes", names)
    return list(itertools.chain.from_iterable(dataset_dicts))


def register_dataset_union(name: str, names: Sequence[str]) -> str:
    """
    Register ``name`` as the concatenation of the detection datasets ``names`` (e.g. VOC07+12
    trainval as one dataset, for k-shot sampling); they must have the same ``thing_classes``,
    checked when it is loaded. Registering the same union again is a no-op. Returns ``name``.
    """
    names = tuple(names)
    if name in _DATASET_UNIONS:
        if _DATASET_UNIONS[name] == names:
            return name
        raise ValueError(f"{name!r} is already the union of {_DATASET_UNIONS[name]}, not {names}: use another name")
    if name in DatasetCatalog.list():
        raise ValueError(f"dataset name {name!r} is already taken: choose another name for the union of {names}")

    def load() -> List[dict]:
        dicts = get_detection_dataset_dicts(list(names), filter_empty=False)  # checks thing_classes
        if MetadataCatalog.get(name).get("thing_classes") is None:
            MetadataCatalog.get(name).set(thing_classes=MetadataCatalog.get(names[0]).thing_classes)
        return dicts

    DatasetCatalog.register(name, load)
    for key in ("thing_classes", "evaluator_type"):
        value = MetadataCatalog.get(names[0]).get(key)
        if value is not None:
            MetadataCatalog.get(name).set(**{key: value})
    _DATASET_UNIONS[name] = names
    return name


_DATASET_UNIONS: Dict[str, Tuple[str, ...]] = {}  # union name -> its datasets


def _register_defaults() -> None:
    root = datasets_root()
    for prefix, spec in PRESETS.items():
        register_synthetic_dataset(prefix, spec, root)
    for split in SPLITS:
        register_imagenet_folder(f"imagenet_{split}", os.path.join(root, "imagenet", split))
    register_dataset_union("voc_0712_trainval", ("voc_2007_trainval", "voc_2012_trainval"))


_register_defaults()

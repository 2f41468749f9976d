"""What determines a synthetic dataset: the generator version, the shape classes, the spec
(``SyntheticSpec``) and its presets, and the version stamp that records them with the files."""

import dataclasses
import json
from typing import Dict, Tuple

GENERATOR_VERSION = 2
"""Bump whenever the files generated for a given spec change: the version is part of the dataset
folder name and of VERSION.json, so data made by an older generator is never loaded as new.
Version 2 added the classification images' boxes (their pixels are those of version 1)."""

SHAPE_STYLES: Dict[str, Tuple[int, str]] = {
    # class name: (OpenCV hue in 0..179, texture); each class also has its own outline (draw.py)
    "circle": (0, "solid"),
    "square": (22, "stripes"),
    "triangle": (45, "dots"),
    "star": (67, "checker"),
    "ring": (90, "solid"),
    "cross": (112, "stripes"),
    "hexagon": (135, "checker"),
    "diamond": (157, "dots"),
}
SHAPE_CLASSES = tuple(SHAPE_STYLES)


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """
    Everything that determines a synthetic dataset; equal specs give byte-identical files.

    Sizes are diameters, in pixels, of the circle that encloses an object, sampled log-uniformly
    so that small objects (< 32 px) are common. Overlap is controlled by ``overlap_probability``
    (chance that an instance is placed onto an earlier one rather than anywhere) and capped by
    ``max_occlusion`` (largest fraction of an instance's shape that later instances may cover;
    0 forbids any overlap). Instances with fewer than ``min_visible_area`` visible pixels are
    removed from the scene. Classification images are ``classification_image_size`` squares
    with one dominant shape and up to ``max_distractors`` smaller shapes of other classes.
    """

    num_train_images: int = 400
    num_val_images: int = 100
    image_height: int = 256
    image_width: int = 256
    class_names: Tuple[str, ...] = SHAPE_CLASSES
    object_size_range: Tuple[int, int] = (12, 180)
    instances_per_image_range: Tuple[int, int] = (1, 6)
    overlap_probability: float = 0.3
    max_occlusion: float = 0.5
    min_visible_area: int = 20
    classification_image_size: int = 128
    classification_train_per_class: int = 60
    classification_val_per_class: int = 20
    max_distractors: int = 2
    seed: int = 0

    def __post_init__(self):
        # JSON and command lines give lists; keep the spec hashable and comparable
        for field in ("class_names", "object_size_range", "instances_per_image_range"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        self._validate()

    def _validate(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{field.name}={value!r} must be an int")
            if field.type is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{field.name}={value!r} must be a number")
        unknown = [name for name in self.class_names if name not in SHAPE_STYLES]
        if not self.class_names or unknown or len(set(self.class_names)) != len(self.class_names):
            raise ValueError(
                f"class_names={self.class_names!r} must be distinct names out of {SHAPE_CLASSES} "
                f"(unknown: {unknown})"
            )
        for field in (
            "num_train_images",
            "num_val_images",
            "classification_train_per_class",
            "classification_val_per_class",
            "max_distractors",
            "min_visible_area",
        ):
            if getattr(self, field) < 0:
                raise ValueError(f"{field}={getattr(self, field)} must be >= 0")
        smallest_side = min(self.image_height, self.image_width)
        min_size, max_size = self.object_size_range
        if not 4 <= min_size <= max_size <= smallest_side - 1:
            raise ValueError(
                f"object_size_range={self.object_size_range} must satisfy 4 <= min <= max <= "
                f"min(image_height, image_width) - 1 = {smallest_side - 1}"
            )
        min_count, max_count = self.instances_per_image_range
        if not 1 <= min_count <= max_count:
            raise ValueError(
                f"instances_per_image_range={self.instances_per_image_range} must satisfy 1 <= min <= max"
            )
        for field in ("overlap_probability", "max_occlusion"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"{field}={getattr(self, field)} must be within [0, 1]")
        if self.classification_image_size < 16:
            raise ValueError(f"classification_image_size={self.classification_image_size} must be >= 16")

    def to_dict(self) -> dict:
        """JSON-ready form (tuples become lists), the inverse of ``from_dict``."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> "SyntheticSpec":
        """Build a spec from ``to_dict()`` output or JSON; unknown keys are an error."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown SyntheticSpec fields {unknown}; valid fields: {sorted(known)}")
        return cls(**values)


PRESETS: Dict[str, SyntheticSpec] = {
    "synthetic_shapes": SyntheticSpec(),
    # crowded scenes for occlusion studies: more instances, most of them placed onto others
    "synthetic_shapes_occluded": SyntheticSpec(
        instances_per_image_range=(3, 8), overlap_probability=0.8, max_occlusion=0.75, seed=1
    ),
}
DEFAULT_PRESET = "synthetic_shapes"


def version_stamp(spec: SyntheticSpec) -> dict:
    """The content of a dataset folder's VERSION.json: the generator version and the spec."""
    return {"generator_version": GENERATOR_VERSION, "spec": spec.to_dict()}

"""Fixtures shared by the test folders (one per project, plus common/)."""
import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog

import projects.common.data  # noqa: F401  (registers the embedded datasets)


@pytest.fixture
def unique_dataset_name(request):
    """A dataset name unique to the test (registrations last for the whole session)."""
    return "test_" + request.node.name.replace("[", "_").replace("]", "")


@pytest.fixture(scope="session")
def dataset_subset():
    """``dataset_subset(base, name, step=1, count=None)`` registers ``base``'s images
    ``[:count*step:step]`` as dataset ``name`` with ``base``'s class names and evaluator type, once
    per session, and returns ``name``: small evaluation sets cut from the embedded data."""

    def register(base: str, name: str, count: int, step: int = 1) -> str:
        if name not in DatasetCatalog.list():
            DatasetCatalog.register(name, lambda: DatasetCatalog.get(base)[: count * step : step])
            base_metadata = MetadataCatalog.get(base)
            MetadataCatalog.get(name).set(thing_classes=base_metadata.thing_classes,
                                          evaluator_type=base_metadata.get("evaluator_type"))
        return name

    return register

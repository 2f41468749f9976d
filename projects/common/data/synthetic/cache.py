"""The synthetic datasets on disk: generated once, atomically and under an inter-process lock,
and checked against the spec and generator version that are asked for on every later use."""

import fcntl
import glob
import json
import os
import shutil
from contextlib import contextmanager

from .layout import VERSION_FILE
from .spec import GENERATOR_VERSION, SyntheticSpec, version_stamp
from .writers import write_dataset


class SpecMismatchError(RuntimeError):
    """A dataset folder exists but was generated from another spec or generator version."""


def _check_version_stamp(spec: SyntheticSpec, dataset_dir: str) -> None:
    """Raise SpecMismatchError unless ``dataset_dir`` was generated from exactly ``spec``."""
    fix = (
        f"Delete {dataset_dir}, regenerate it with `python tools/generate_synthetic_data.py "
        f"--root {os.path.dirname(os.path.abspath(dataset_dir))} --overwrite` (plus the same --preset "
        "and --set overrides), or put the other spec in another folder (another prefix for "
        "register_synthetic_dataset, --name for that tool)."
    )
    try:
        with open(os.path.join(dataset_dir, VERSION_FILE)) as f:
            found = json.load(f)
    except (OSError, ValueError) as err:
        raise SpecMismatchError(
            f"{dataset_dir} exists but its {VERSION_FILE} is missing or unreadable ({err}), so it was "
            f"not made by this generator. {fix}"
        ) from err
    expected = version_stamp(spec)
    if found == expected:
        return
    found = found if isinstance(found, dict) else {}
    found_spec = found.get("spec") if isinstance(found.get("spec"), dict) else {}
    differences = {
        key: {"on disk": found_spec.get(key), "requested": value}
        for key, value in expected["spec"].items()
        if found_spec.get(key) != value
    }
    raise SpecMismatchError(
        f"{dataset_dir} holds data of generator version {found.get('generator_version')} (requested: "
        f"{GENERATOR_VERSION}) with spec differences {json.dumps(differences)}. {fix}"
    )


@contextmanager
def _exclusive_lock(lock_path: str):
    """Inter-process lock (e.g. between DDP ranks) held while a dataset folder is created."""
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def ensure_generated(spec: SyntheticSpec, dataset_dir: str, overwrite: bool = False) -> str:
    """
    Make sure ``dataset_dir`` holds the dataset of ``spec``; return ``dataset_dir``.

    Generation writes into a temporary sibling folder that is renamed into place only when
    complete, so an interrupted run never leaves a dataset that loads. A file lock next to the
    folder makes concurrent callers (processes) generate once; the others wait and reuse it.
    An existing folder from another spec raises SpecMismatchError unless ``overwrite`` is set,
    in which case it is replaced (also atomically).
    """
    dataset_dir = os.path.normpath(dataset_dir)
    if not overwrite and os.path.isfile(os.path.join(dataset_dir, VERSION_FILE)):
        _check_version_stamp(spec, dataset_dir)
        return dataset_dir
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    os.makedirs(parent, exist_ok=True)
    temporary_prefix = os.path.join(parent, os.path.basename(dataset_dir) + ".tmp-")
    with _exclusive_lock(os.path.join(parent, os.path.basename(dataset_dir) + ".lock")):
        for leftover in glob.glob(glob.escape(temporary_prefix) + "*"):  # from killed runs; we hold the lock
            shutil.rmtree(leftover)
        if os.path.exists(dataset_dir) and not overwrite:
            _check_version_stamp(spec, dataset_dir)  # made by another process while we waited
            return dataset_dir
        temporary_dir = f"{temporary_prefix}{os.getpid()}"  # unique: we hold the lock
        os.mkdir(temporary_dir)  # unlike tempfile.mkdtemp, respects the umask (readable by others)
        try:
            write_dataset(spec, temporary_dir, os.path.basename(dataset_dir))
            if os.path.exists(dataset_dir):
                replaced_dir = temporary_dir + "-replaced"
                os.rename(dataset_dir, replaced_dir)
                os.rename(temporary_dir, dataset_dir)
                shutil.rmtree(replaced_dir)
            else:
                os.rename(temporary_dir, dataset_dir)
        finally:
            shutil.rmtree(temporary_dir, ignore_errors=True)
    return dataset_dir

"""Writing result files so that a reader (or a resumed run) never sees half of one, and the
append-only JSONL "parts" with which resumable generators (DAP's pseudo boxes, ResNet-WS's
proposals) survive being killed."""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional, Set


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "wb") -> Iterator:
    """A file object whose content replaces ``path`` only once the ``with`` block completes
    (temporary file next to it + ``os.replace``; folders created). After a crash ``path`` is
    either the old file or the complete new one; the file gets the usual permissions (umask),
    not mkstemp's. ``mode``: "wb" or "w"."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode={mode!r}: atomic outputs are written whole, use 'wb' or 'w'")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    extension = os.path.splitext(path)[1]  # kept: writers such as savefig infer the format from it
    file_descriptor, temporary_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=extension)
    try:
        with os.fdopen(file_descriptor, mode) as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary_path, 0o666 & ~umask)
        os.replace(temporary_path, path)
    except BaseException:
        os.remove(temporary_path)
        raise


def read_json(path: str):
    """The content of a JSON file; one that does not parse is an error naming the file and the
    likely cause (a truncated write or download), not a bare ``JSONDecodeError``."""
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} is not valid JSON ({error}): the file is probably truncated (an interrupted write or "
                "download): write or download it again (a generated file: delete it to have it regenerated)"
            ) from error


def write_json_atomically(path: str, content, indent: Optional[int] = None) -> None:
    """``content`` as JSON at ``path``, atomically (see ``atomic_output``)."""
    with atomic_output(path, "w") as f:
        json.dump(content, f, indent=indent)


def write_bytes_atomically(path: str, data: bytes) -> None:
    """``data`` at ``path``, atomically (see ``atomic_output``)."""
    with atomic_output(path) as f:
        f.write(data)


def save_figure_atomically(figure, path: str, **savefig_options) -> None:
    """A matplotlib figure as an image file at ``path`` (format from its extension), atomically."""
    with atomic_output(path) as f:
        figure.savefig(f, format=os.path.splitext(path)[1][1:] or "png", **savefig_options)


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's content (a path or a URL that detectron2's PathManager fetches):
    what a resumable run compares to know its inputs did not change in between."""
    from detectron2.utils.file_io import PathManager

    digest = hashlib.sha256()
    with open(PathManager.get_local_path(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_to_overwrite(path: str, overwrite: bool) -> None:
    """An error when ``path`` exists and ``overwrite`` is false (the generators' ``--overwrite``)."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists: pass --overwrite to replace it, or choose another --output")


class ResumableParts:
    """
    ``<output>.parts``, where a resumable generator keeps the results of its finished items (one
    JSON record with an ``"index"`` per item) until every item is done:

    1. ``open()`` creates the folder with ``settings.json`` (what decides the results), or, when
       an interrupted run left it, checks that the settings are the same: results made with
       other settings are never mixed in. Safe when several processes open it at once.
    2. ``finished_indices()``: the items any earlier run finished (skip them).
    3. every process appends its records to its own part file (``writer(name)``).
    4. ``completed_records(n)``: once items 0..n-1 all have a record, those records in index
       order; the caller writes its output from them atomically, then calls ``remove()``.

    A killed run loses only what its writers had not flushed; a last line cut by the kill is
    ignored on reading and cut before appending, so the resumed run redoes that item.
    """

    def __init__(self, output: str, settings: Dict):
        self.folder = output + ".parts"
        self.settings = json.loads(json.dumps(settings))  # as read back from settings.json
        self._settings_file = os.path.join(self.folder, "settings.json")

    def open(self) -> None:
        """Create the folder with its settings, or check the settings of an interrupted run."""
        os.makedirs(self.folder, exist_ok=True)
        if not os.path.exists(self._settings_file):
            write_json_atomically(self._settings_file, self.settings, indent=1)
        with open(self._settings_file) as f:
            previous = json.load(f)
        if previous != self.settings:
            differing = {key: f"{previous.get(key)} there, {self.settings.get(key)} now"
                         for key in sorted(set(previous) | set(self.settings))
                         if previous.get(key) != self.settings.get(key)}
            raise ValueError(
                f"{self.folder} holds an interrupted run with other settings ({differing}): resume with the "
                f"same arguments, or delete {self.folder} to start over"
            )

    def finished_indices(self) -> Set[int]:
        return {record["index"] for record in read_jsonl_parts(self.folder)}

    def writer(self, part_name: str, flush_every: int = 1) -> "JsonlPartWriter":
        """The writer of part file ``<folder>/<part_name>.jsonl``; one writer per process."""
        return JsonlPartWriter(os.path.join(self.folder, part_name + ".jsonl"), flush_every)

    def completed_records(self, num_items: int) -> Optional[List[Dict]]:
        """The records of items 0..num_items-1 in index order, or None while some are missing
        (an item found twice, e.g. done by two runs at once, has the same result: the first is kept)."""
        records = {}
        for record in read_jsonl_parts(self.folder):
            records.setdefault(record["index"], record)
        if any(index not in records for index in range(num_items)):
            return None
        return [records[index] for index in range(num_items)]

    def remove(self) -> None:
        """Delete the folder, once the output made from its records is written."""
        shutil.rmtree(self.folder)


class JsonlPartWriter:
    """
    Appends one JSON line per record to a part file. Records reach the disk (write, flush,
    fsync) every ``flush_every`` records, at ``flush()`` and when the writer is closed (also by
    an exception: the records given are finished results), so a kill loses at most the records
    given since the last flush. A line left unfinished by a killed run is cut before appending.
    """

    def __init__(self, path: str, flush_every: int = 1):
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        drop_partial_line(path)
        self.path, self.flush_every = path, flush_every
        self._file = open(path, "a")
        self._pending: List[str] = []

    def add(self, record: Dict) -> None:
        self._pending.append(json.dumps(record) + "\n")
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._file.write("".join(self._pending))
            self._pending = []
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> "JsonlPartWriter":
        return self

    def __exit__(self, *exception) -> None:
        self.close()


def read_jsonl_parts(parts_dir: str) -> Iterable[Dict]:
    """The records of every ``*.jsonl`` file in ``parts_dir`` (sorted by file name); a last line
    cut by a kill (no newline) is ignored, so its record is redone by the resumed run."""
    for name in sorted(os.listdir(parts_dir)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(parts_dir, name)) as f:
            for line in f:
                if line.endswith("\n"):
                    yield json.loads(line)


def drop_partial_line(path: str) -> None:
    """Cut a line left unfinished by a killed run, so that appended lines start on their own."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        content = f.read()
        if content and not content.endswith(b"\n"):
            f.truncate(content.rfind(b"\n") + 1)

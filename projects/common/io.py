"""Writing result files so that a reader (or a resumed run) never sees half of one, and reading
back the append-only JSONL parts that resumable generators write."""
import contextlib
import json
import os
import tempfile
from typing import Dict, Iterable, Iterator, Optional


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

"""Writing result files so that a reader (or a resumed run) never sees half of one."""
import json
import os
import tempfile
from typing import Optional


def write_json_atomically(path: str, content, indent: Optional[int] = None) -> None:
    """JSON to a temporary file next to ``path`` (folders created), then ``os.replace``: no
    half-written file after a crash; the file gets the usual permissions (umask), not mkstemp's."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    file_descriptor, temporary_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(file_descriptor, "w") as f:
            json.dump(content, f, indent=indent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary_path, 0o666 & ~umask)
        os.replace(temporary_path, path)
    except BaseException:
        os.remove(temporary_path)
        raise

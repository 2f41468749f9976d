"""projects.common.io: the resumable parts of the generators (settings, part files, merge)."""
import os

import pytest

from projects.common.io import ResumableParts, read_json, refuse_to_overwrite


def test_parts_resume_merge_in_index_order_and_clean_up(tmp_path):
    output = str(tmp_path / "result.json")
    parts = ResumableParts(output, {"options": (1, 2)})
    parts.open()
    with parts.writer("a", flush_every=2) as part:
        part.add({"index": 2, "value": "c"})
    assert parts.finished_indices() == {2} and parts.completed_records(3) is None
    with open(os.path.join(parts.folder, "a.jsonl"), "a") as f:
        f.write('{"index": 0, "val')  # cut by a kill: ignored, then cut before appending

    resumed = ResumableParts(output, {"options": [1, 2]})  # the same settings, as read back from JSON
    resumed.open()
    assert resumed.finished_indices() == {2}
    with resumed.writer("a") as part:
        part.add({"index": 0, "value": "a"})
    with resumed.writer("b") as part:
        part.add({"index": 1, "value": "b"})
        part.add({"index": 2, "value": "c"})  # done twice (two runs at once): the first is kept
    assert [record["value"] for record in resumed.completed_records(3)] == ["a", "b", "c"]
    resumed.remove()
    assert not os.path.exists(parts.folder)


def test_parts_refuse_other_settings_and_outputs_are_not_overwritten(tmp_path):
    output = str(tmp_path / "result.json")
    ResumableParts(output, {"scales": [64], "dataset": "a"}).open()
    with pytest.raises(ValueError, match=r"other settings \({'scales': '\[64\] there, \[96\] now'}\).*delete"):
        ResumableParts(output, {"scales": [96], "dataset": "a"}).open()
    with open(output, "w") as f:
        f.write("{}")
    with pytest.raises(FileExistsError, match="--overwrite"):
        refuse_to_overwrite(output, overwrite=False)
    refuse_to_overwrite(output, overwrite=True)


def test_a_truncated_json_file_is_named_with_the_cause(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text('{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "fi')
    with pytest.raises(ValueError, match=rf"{path} is not valid JSON .*truncated"):
        read_json(str(path))

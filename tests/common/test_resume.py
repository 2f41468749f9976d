"""What survives a kill: a run killed at an arbitrary iteration and resumed ends with the
uninterrupted run's weights, bit for bit (one process, fixed seed, CPU); checkpoints are never
left half-written; the data loader's stream is detectron2's and continues exactly."""
import itertools
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from detectron2.data import build_detection_train_loader
from detectron2.data.samplers import TrainingSampler

from projects.common.data.resumable import ResumableTrainLoader
from projects.common.engine import TrainingCheckpointer, preserved_random_states

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = "smoke/faster_rcnn_R18_FPN_synthetic.py"


def overrides(output_dir, max_iter=12):
    return [f"train.output_dir={output_dir}", f"train.max_iter={max_iter}", "train.checkpointer.period=4",
            f"train.eval_period={max_iter}", "train.log_period=1", "train.seed=3",
            "dataloader.train.total_batch_size=2", "dataloader.train.num_workers=1",
            "dataloader.test.dataset.names=synthetic_shapes_val", "lr_multiplier.warmup_iters=2"]


def launcher(*args):
    return [sys.executable, "-m", "projects.common.engine", "--config-file", SMOKE, *args]


def environment():
    return dict(os.environ, OMP_NUM_THREADS="1")


def read_metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_identical_weights(tmp_path):
    uninterrupted, interrupted = str(tmp_path / "uninterrupted"), str(tmp_path / "interrupted")
    subprocess.run(launcher(*overrides(uninterrupted)), cwd=REPO, env=environment(), check=True,
                   capture_output=True)

    # kill -9 once iteration 9 is logged: after the checkpoint of iteration 7, two steps later
    process = subprocess.Popen(launcher(*overrides(interrupted)), cwd=REPO, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if "iter: 9 " in line:
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not os.path.exists(os.path.join(interrupted, "model_final.pth"))

    resumed = subprocess.run(launcher("--resume", *overrides(interrupted)), cwd=REPO, env=environment(),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "model_0000007.pth" in resumed.stdout + resumed.stderr

    final = torch.load(os.path.join(interrupted, "model_final.pth"), weights_only=False)["model"]
    expected = torch.load(os.path.join(uninterrupted, "model_final.pth"), weights_only=False)["model"]
    assert final.keys() == expected.keys()
    different = [name for name in expected if not torch.equal(final[name], expected[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"

    iterations = [m["iteration"] for m in read_metrics(interrupted) if "total_loss" in m]
    assert iterations == list(range(12))  # records after the checkpoint are replaced, not repeated
    # (losses are logged as medians over a window that restarts with the process; the rate is not)
    rates = {m["iteration"]: m["lr"] for m in read_metrics(interrupted) if "lr" in m}
    assert rates == {m["iteration"]: m["lr"] for m in read_metrics(uninterrupted) if "lr" in m}


@pytest.mark.slow
def test_resuming_a_finished_run_rewrites_an_unreadable_final_checkpoint(tmp_path):
    output_dir = str(tmp_path / "run")
    args = overrides(output_dir, max_iter=4)
    subprocess.run(launcher(*args), cwd=REPO, env=environment(), check=True, capture_output=True)
    final = os.path.join(output_dir, "model_final.pth")
    expected = torch.load(final, weights_only=False)["model"]
    with open(final, "r+b") as f:  # as a kill during a (non-atomic) write of it would leave the run
        f.truncate(os.path.getsize(final) // 2)
    with open(os.path.join(output_dir, "last_checkpoint"), "w") as f:
        f.write("model_0000003.pth")
    resumed = subprocess.run(launcher("--resume", *args), cwd=REPO, env=environment(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "does not load" in resumed.stdout + resumed.stderr
    rewritten = torch.load(final, weights_only=False)["model"]
    assert all(torch.equal(rewritten[name], expected[name]) for name in expected)


def test_a_checkpoint_that_fails_while_written_leaves_the_previous_files(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    checkpointer = TrainingCheckpointer(model, str(tmp_path))
    checkpointer.save("model_final")
    before = (tmp_path / "model_final.pth").read_bytes()

    def disk_full(data, f):
        f.write(b"x" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match=r"writing the checkpoint .*model_final.pth failed \(OSError: .*No space left.*"
                                      r"previous checkpoints are intact. .* GiB are free"):
        checkpointer.save("model_final")
    assert (tmp_path / "model_final.pth").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_final.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumable_loader_is_detectron2s_stream_and_continues_exactly(num_workers):
    dataset = [{"index": i, "width": 10 + 5 * (i % 3), "height": 12} for i in range(23)]

    def mapper(record):  # an augmentation drawing from the global RNG, as detectron2's do
        return dict(record, draw=float(torch.rand(1)))

    def indices(batches):
        return [[d["index"] for d in batch] for batch in batches]

    reference = build_detection_train_loader(dataset, mapper=mapper, total_batch_size=4, num_workers=num_workers,
                                             sampler=TrainingSampler(len(dataset), seed=5))
    ours = ResumableTrainLoader(dataset, mapper=mapper, total_batch_size=4, num_workers=num_workers, seed=5)
    batches = list(itertools.islice(ours, 30))
    assert indices(batches) == indices(itertools.islice(reference, 30))  # same order, same aspect buckets

    interrupted = ResumableTrainLoader(dataset, mapper=mapper, total_batch_size=4, num_workers=num_workers, seed=5)
    first = list(itertools.islice(iter(interrupted), 11))
    state = interrupted.state_dict()
    assert state["waiting"] != [[], []]  # samples wait in the aspect-ratio buckets across the cut
    resumed = ResumableTrainLoader(dataset, mapper=mapper, total_batch_size=4, num_workers=0, seed=123)
    resumed.load_state_dict(state)
    assert first + list(itertools.islice(resumed, 19)) == batches  # augmentation draws included


def test_evaluation_during_training_leaves_the_random_states_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with preserved_random_states():
        torch.rand(5)
    assert torch.equal(torch.rand(3), expected)

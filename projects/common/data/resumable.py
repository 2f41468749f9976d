"""
A training data loader whose position is part of the checkpoint, so that a resumed run sees the
same batches as the run it continues.

detectron2's training loader is an infinite shuffled stream (``TrainingSampler``), sharded over
processes and data workers, mapped, then batched by aspect ratio (``AspectRatioGroupedDataset``).
Resuming it restarts the stream and the augmentations' random draws, so a resumed run trains on
other batches than the uninterrupted one. ``ResumableTrainLoader`` keeps that stream (the same
permutations of the same seed, the same aspect-ratio buckets) and makes it a function of the
position: each sample's augmentations draw from RNGs seeded by (seed, process rank, position), so
the sample does not depend on which worker mapped it or on what came before. Its
``state_dict`` (seed, next position, positions waiting in the buckets) goes into the checkpoint;
``load_state_dict`` before the first batch continues the stream exactly.

Exact with one process and any number of data workers. With several processes only rank 0's
state is checkpointed (the checkpointer runs there); every rank continues its own stream from that
position, so the data order after a resume is close to, not identical with, the uninterrupted run.
"""
import contextlib
import itertools
import logging
import random
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from torch.utils import data as torchdata

from detectron2.utils import comm

__all__ = ["ResumableTrainLoader", "build_resumable_train_loader", "seeded_random_state", "training_indices"]

logger = logging.getLogger(__name__)


def training_indices(size: int, seed: int, shuffle: bool = True) -> Iterator[int]:
    """detectron2's ``TrainingSampler`` stream before sharding: shuffle(range(size)) +
    shuffle(range(size)) + ..., the permutations drawn from one generator seeded with ``seed``."""
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    while True:
        yield from (torch.randperm(size, generator=generator) if shuffle else torch.arange(size)).tolist()


@contextlib.contextmanager
def seeded_random_state(seed: int):
    """Python's, NumPy's and torch's global RNGs seeded with ``seed`` inside the block and restored
    afterwards (augmentations draw from the global RNGs)."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


def _unchanged(sample):
    """The DataLoader's collate function: samples pass as they are (no tensor conversion)."""
    return sample


class _PositionedStream(torchdata.IterableDataset):
    """(position, mapped sample) of one process's shard of the stream, from ``start`` on; data
    workers take every n-th position, which the DataLoader yields back in order."""

    def __init__(self, loader: "ResumableTrainLoader", start: int):
        self.loader = loader
        self.start = start

    def __iter__(self):
        worker = torchdata.get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        first = self.start + worker_id
        positions = itertools.count(first, num_workers)
        indices = itertools.islice(self.loader.global_indices(), self.loader.rank + first * self.loader.world_size,
                                   None, self.loader.world_size * num_workers)
        for position, index in zip(positions, indices):
            yield position, self.loader.map_sample(position, index)


class ResumableTrainLoader:
    """
    Infinite training batches (lists of mapped dicts, ``total_batch_size / world size`` each) in
    detectron2's order, resumable exactly through ``state_dict`` / ``load_state_dict``.

    Args:
        dataset: the dataset dicts (a list, or any sequence).
        mapper: callable dict -> mapped dict (``None`` drops the sample: the stream goes on).
        total_batch_size: images per iteration over all processes.
        aspect_ratio_grouping: batch landscape (w > h) and portrait images separately, as
            detectron2 (needs "width" and "height" in the mapped dicts).
        num_workers: data loading processes.
        seed: the stream's seed; ``None`` draws one shared by all processes (reproducible under
            a fixed ``train.seed``). A loaded state brings its own seed.
        shuffle: shuffle each pass over the dataset.
    """

    def __init__(
        self,
        dataset: Sequence[dict],
        *,
        mapper,
        total_batch_size: int,
        aspect_ratio_grouping: bool = True,
        num_workers: int = 0,
        seed: Optional[int] = None,
        shuffle: bool = True,
    ):
        if len(dataset) == 0:
            raise ValueError("the training dataset is empty: check dataloader.train.dataset")
        self.world_size, self.rank = comm.get_world_size(), comm.get_rank()
        if total_batch_size <= 0 or total_batch_size % self.world_size:
            raise ValueError(
                f"dataloader.train.total_batch_size={total_batch_size} must be a positive multiple of the "
                f"number of processes ({self.world_size})"
            )
        self.dataset = dataset
        self.mapper = mapper
        self.batch_size = total_batch_size // self.world_size
        self.aspect_ratio_grouping = aspect_ratio_grouping
        self.num_workers = num_workers
        self.shuffle = shuffle
        self.seed = int(comm.shared_random_seed() if seed is None else seed)
        self._position = 0  # next position of this process's stream to be batched
        self._waiting: List[List[int]] = [[], []]  # positions in the aspect-ratio buckets
        self._dropped = 0

    def global_indices(self) -> Iterator[int]:
        return training_indices(len(self.dataset), self.seed, self.shuffle)

    def map_sample(self, position: int, index: int):
        """The mapped ``dataset[index]`` at ``position``, with augmentation RNGs seeded by the
        position (the same sample whichever worker maps it, before or after a resume)."""
        seed = int(np.random.SeedSequence([self.seed, self.rank, position]).generate_state(1)[0])
        with seeded_random_state(seed):
            return self.mapper(self.dataset[index])

    def state_dict(self) -> Dict:
        return {"seed": self.seed, "position": self._position, "waiting": [list(b) for b in self._waiting]}

    def load_state_dict(self, state: Dict) -> None:
        """Continue the stream of ``state`` (before the first batch is drawn)."""
        self.seed = int(state["seed"])
        self._position = int(state["position"])
        self._waiting = [list(map(int, b)) for b in state["waiting"]]

    def _samples_at(self, positions: Sequence[int]) -> Dict[int, dict]:
        """The mapped samples at ``positions`` of this process's stream (one pass over it)."""
        wanted = {self.rank + p * self.world_size: p for p in positions}
        samples = {}
        for global_position, index in zip(range(max(wanted, default=-1) + 1), self.global_indices()):
            if global_position in wanted:
                samples[wanted[global_position]] = self.map_sample(wanted[global_position], index)
        return samples

    def _bucket(self, sample) -> int:
        if not self.aspect_ratio_grouping:
            return 0
        return 0 if sample["width"] > sample["height"] else 1

    def _stream(self):
        stream = _PositionedStream(self, self._position)
        if self.num_workers == 0:
            return iter(stream)
        generator = torch.Generator()  # the workers' base seed must not draw from the global RNG
        generator.manual_seed(self.seed)
        return iter(torchdata.DataLoader(stream, batch_size=None, num_workers=self.num_workers,
                                         collate_fn=_unchanged, generator=generator))

    def __iter__(self):
        waiting = self._samples_at([p for positions in self._waiting for p in positions])
        buckets = [[(p, waiting[p]) for p in positions] for positions in self._waiting]
        for position, sample in self._stream():
            self._position = position + 1
            if sample is None:
                self._dropped += 1
                logger.warning(f"the mapper dropped the sample at stream position {position} "
                               f"({self._dropped} so far)")
                continue
            bucket = buckets[self._bucket(sample)]
            bucket.append((position, sample))
            if len(bucket) == self.batch_size:
                batch = [s for _, s in bucket]
                bucket.clear()
                self._waiting = [[p for p, _ in b] for b in buckets]
                yield batch
            else:
                self._waiting = [[p for p, _ in b] for b in buckets]


def build_resumable_train_loader(
    dataset: Sequence[dict],
    *,
    mapper,
    total_batch_size: int,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    seed: Optional[int] = None,
) -> ResumableTrainLoader:
    """``build_detection_train_loader``'s arguments, a ``ResumableTrainLoader`` back (configs swap
    one for the other)."""
    return ResumableTrainLoader(
        dataset,
        mapper=mapper,
        total_batch_size=total_batch_size,
        aspect_ratio_grouping=aspect_ratio_grouping,
        num_workers=num_workers,
        seed=seed,
    )

"""Timing that stays honest on a shared machine; every benchmark of the collection uses it.

``interleaved`` runs the variants of a comparison in turns, round after round (each round starting
one variant later than the previous), so that load from other processes falls on all of them
alike, and times every call twice: by the process's CPU time (the work done, however many other
jobs share the cores; with one thread, the computation itself) and by wall time (what a user
waits for; the figure that counts on a GPU, where the host's CPU time is not the work). A
``Timing`` reports the minimum and the median over the rounds of the clock that fits the device;
``describe`` says which clock, how many threads and which device, for every table's title.
"""
import contextlib
import dataclasses
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch

CLOCKS = ("process CPU time", "wall time")


@dataclasses.dataclass
class Timing:
    """Seconds per call of one variant, one entry per round, on both clocks."""

    cpu_seconds: List[float]
    wall_seconds: List[float]
    clock: str = CLOCKS[0]  # the clock that ``min`` and ``median`` report

    @property
    def seconds(self) -> List[float]:
        return self.cpu_seconds if self.clock == CLOCKS[0] else self.wall_seconds

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ms(self) -> float:
        """The median in milliseconds."""
        return 1000 * self.median


def use_threads(threads: int) -> int:
    """Run torch (intra-op) and OpenCV on ``threads`` threads; returns it. One thread makes
    process CPU time the cost of the computation alone, without other threads' spinning."""
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    return threads


def clock_for(device) -> str:
    """Process CPU time on the CPU, wall time on a GPU."""
    return CLOCKS[1] if torch.device(device).type == "cuda" else CLOCKS[0]


def interleaved(variants: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                device="cpu") -> Dict[str, Timing]:
    """Time each of ``variants`` (name -> function of no arguments) ``repeats`` times, in turns,
    after ``warmup`` untimed calls each (caches, allocator, lazy initialisation)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    device = torch.device(device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    synchronize()
    cpu = {name: [] for name in names}
    wall = {name: [] for name in names}
    for round_index in range(repeats):
        start_at = round_index % len(names)
        for name in names[start_at:] + names[:start_at]:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            variants[name]()
            synchronize()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    clock = clock_for(device)
    return {name: Timing(cpu[name], wall[name], clock) for name in names}


def describe(repeats: int, device="cpu", threads: Optional[int] = None) -> str:
    """E.g. "process CPU time, interleaved, median of 7, 1 CPU thread, cpu, torch 2.x"."""
    device = torch.device(device)
    threads = torch.get_num_threads() if threads is None else threads
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    thread_text = f"{threads} CPU thread{'s' if threads != 1 else ''}"
    return (f"{clock_for(device)}, interleaved, median of {repeats}, {thread_text}, {where}, "
            f"torch {torch.__version__}")


class PartTimes:
    """Time spent inside given modules during the calls of a variant, by forward hooks, on the
    clock ``interleaved`` reports: ``parts`` maps a name to the modules it sums (a part that
    contains another is timed whole). Wrap each timed call: ``with part_times.call(): model(x)``;
    ``median(name)`` is then that part's median over the calls, in seconds."""

    def __init__(self, parts: Dict[str, List[torch.nn.Module]], device="cpu"):
        device = torch.device(device)
        self._synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self._now = time.perf_counter if device.type == "cuda" else time.process_time
        self._seconds = {name: [] for name in parts}
        self._current = None
        self._handles = []
        for name, modules in parts.items():
            for module in modules:
                self._handles.append(module.register_forward_pre_hook(self._starter(name)))
                self._handles.append(module.register_forward_hook(self._stopper(name)))
        self._started = {}

    def _starter(self, name):
        def start(module, args):
            if self._current is not None:
                self._synchronize()
                self._started[name, id(module)] = self._now()
        return start

    def _stopper(self, name):
        def stop(module, args, output):
            if self._current is not None:
                self._synchronize()
                self._current[name] += self._now() - self._started.pop((name, id(module)))
        return stop

    @contextlib.contextmanager
    def call(self):
        self._current = dict.fromkeys(self._seconds, 0.0)
        try:
            yield
        finally:
            for name, seconds in self._current.items():
                self._seconds[name].append(seconds)
            self._current = None

    def median(self, name: str, skip: int = 0) -> float:
        """Median over the calls after the first ``skip`` (e.g. ``interleaved``'s warm-up calls)."""
        return statistics.median(self._seconds[name][skip:])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

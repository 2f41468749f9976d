"""Scale-adaptive layers of SAN (Scale Adaptive Network): the scale encoding, convolutions whose
kernels a meta layer generates from it, and batch normalisation kept privately per training
resolution, with the supplement's three ways of running at a test resolution (Algorithms 2-4).
"""
import math
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

# resolution whose encoding is 1; the authors' encodings 0.7 ... 0.3 for 224 ... 96 are S / 320
ENCODING_REFERENCE_RESOLUTION = 320.0

# "proxy": nearest training resolution (Alg. 3); "ideal": BN statistics re-estimated at the test
# resolution (Alg. 2); "data_free": BN interpolated between the neighbouring training resolutions
# (Alg. 4, supplement Eq. 1)
INFERENCE_MODES = ("proxy", "ideal", "data_free")


def scale_encoding(resolution: float) -> float:
    """The scalar that tells the meta layers which resolution they generate kernels for:
    ``resolution / 320`` (224 -> 0.7, 96 -> 0.3), defined for any resolution so that ideal
    inference at an unseen size needs no table of encodings."""
    if resolution <= 0:
        raise ValueError(f"resolution={resolution} must be positive (it is min(H, W) of the input)")
    return resolution / ENCODING_REFERENCE_RESOLUTION


def check_inference_mode(mode: str) -> str:
    """``mode`` if it is one of ``INFERENCE_MODES``, else an error listing them."""
    if mode not in INFERENCE_MODES:
        raise ValueError(f"unknown inference mode {mode!r}: use one of {INFERENCE_MODES}")
    return mode


def check_resolutions(resolutions: Sequence[int]) -> Tuple[int, ...]:
    """The training resolutions as an ascending tuple of distinct positive ints."""
    ordered = tuple(sorted(resolutions))
    distinct = len(set(ordered)) == len(ordered)
    if not ordered or not distinct or any(s <= 0 or int(s) != s for s in ordered):
        raise ValueError(
            f"resolutions={tuple(resolutions)} must be a non-empty list of distinct positive whole "
            "numbers of pixels, e.g. (224, 192, 160, 128, 96)"
        )
    return tuple(int(s) for s in ordered)


def nearest_resolution(resolution: float, resolutions: Sequence[int]) -> int:
    """The training resolution closest to ``resolution``; a tie goes to the larger one."""
    return min(resolutions, key=lambda s: (abs(s - resolution), -s))


class MetaConv2d(nn.Module):
    """A convolution (no bias) whose kernel is generated from the scale encoding ``e``:
    ``W(e) = A * e + b`` reshaped to ``(out_channels, in_channels / groups, kH, kW)``, where
    ``A`` and ``b`` are the weight and bias of ``self.meta = nn.Linear(1, kernel size)``.

    Initialisation: ``A = 0`` and ``b`` Kaiming-normal with fan-out (torchvision's and
    detectron2's conv init), so at the start every encoding generates the same, plainly
    initialised kernel: the network starts as a shared-weight network and the meta layer learns
    how kernels change with scale.

    In eval mode the kernel of each encoding is computed once, without autograd, and cached, so
    an eval forward costs what a plain convolution costs (gradients still reach the input, not
    the meta layer). It is cached in the memory format of the input it is used on: with the
    model in channels_last (``model.to(memory_format=torch.channels_last)``) the convolutions
    run in channels_last end to end, which on CPU pays at small resolutions
    (benchmarks/san_latency.py). The cache is cleared by ``.train()`` and whenever ``A`` or
    ``b`` change in place (optimizer steps, ``load_state_dict``, ``.to()``), detected through
    their version counters and storage; edits through ``.data`` bypass the counters, call
    ``.train()`` after them. Training mode never caches.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"MetaConv2d: in_channels={in_channels} and out_channels={out_channels} must both "
                f"be divisible by groups={groups}"
            )
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size, kernel_size)
        kernel_h, kernel_w = kernel_size
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.kernel_shape = (out_channels, in_channels // groups, kernel_h, kernel_w)
        self.meta = nn.Linear(1, math.prod(self.kernel_shape))
        with torch.no_grad():
            nn.init.zeros_(self.meta.weight)
            nn.init.kaiming_normal_(self.meta.bias.view(self.kernel_shape), mode="fan_out",
                                    nonlinearity="relu")
        self._cached_kernels: Dict[Tuple[float, torch.memory_format], torch.Tensor] = {}
        self._cached_for = None

    def _generate(self, encoding: float) -> torch.Tensor:
        encoding_tensor = self.meta.weight.new_full((1,), float(encoding))
        return self.meta(encoding_tensor).view(self.kernel_shape)

    def _parameter_state(self) -> tuple:
        """Changes whenever A or b may have changed (in-place update, new storage or device)."""
        return tuple((p._version, p.data_ptr(), p.device, p.dtype) for p in self.meta.parameters())

    def kernel(self, encoding: float, memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
        """The generated kernel ``W(encoding)``; in eval mode cached per encoding and memory format."""
        if self.training:
            return self._generate(encoding)
        state = self._parameter_state()
        if state != self._cached_for:
            self._cached_kernels.clear()
            self._cached_for = state
        key = (float(encoding), memory_format)
        if key not in self._cached_kernels:
            with torch.no_grad():
                self._cached_kernels[key] = self._generate(key[0]).contiguous(memory_format=memory_format)
        return self._cached_kernels[key]

    def forward(self, x: torch.Tensor, encoding: float) -> torch.Tensor:
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return F.conv2d(x, self.kernel(encoding, memory_format), None, self.stride, self.padding,
                        self.dilation, self.groups)

    def train(self, mode: bool = True):
        self._cached_kernels.clear()
        return super().train(mode)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_shape[2:]}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}")


@dataclass
class _Calibration:
    """Sample-weighted cumulative average of the batch statistics of one ongoing calibration,
    over ``samples`` images so far."""
    resolution: int
    mean: torch.Tensor
    var: torch.Tensor
    samples: int = 0


class PrivateBatchNorm2d(nn.Module):
    """One ``BatchNorm2d`` per training resolution (``self.norms[str(resolution)]``).

    ``forward(x, resolution)``: in training ``resolution`` must be a training resolution and
    only that BN is used (and has its running statistics updated). In eval mode the
    normalisation depends on ``inference_mode`` (see ``set_inference_mode``):

    * "proxy": the BN of the nearest training resolution (Alg. 3);
    * "data_free": weight, bias, running mean and running var each interpolated linearly between
      the BNs of the two neighbouring training resolutions (supplement Eq. 1); outside the
      trained range the BN of the nearest end is used unchanged (clamping: extrapolating
      statistics linearly can make variances negative);
    * "ideal": weight and bias of the nearest training resolution's BN with the statistics
      calibrated at exactly this resolution (Alg. 2, see ``begin_calibration``); a training
      resolution that was not calibrated uses its own BN, whose statistics were estimated there.

    Calibrated statistics are kept per resolution in ``calibrated_statistics`` (not in the
    state dict: they belong to the weights they were measured with, and loading a state dict
    discards them).
    """

    def __init__(self, num_features: int, resolutions: Sequence[int]):
        super().__init__()
        self.num_features = num_features
        self.resolutions = check_resolutions(resolutions)
        self.norms = nn.ModuleDict({str(s): nn.BatchNorm2d(num_features) for s in self.resolutions})
        self.inference_mode = "proxy"
        self.calibrated_statistics: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
        self._calibration = None

    def norm(self, resolution: int) -> nn.BatchNorm2d:
        """The private BN of training resolution ``resolution``."""
        if resolution not in self.resolutions:
            raise ValueError(
                f"resolution {resolution} is not a training resolution {self.resolutions}: train "
                "on one of them, or evaluate (eval mode) to run at other resolutions"
            )
        return self.norms[str(resolution)]

    def set_inference_mode(self, mode: str) -> None:
        """Choose how eval-mode forwards normalise: "proxy", "ideal" or "data_free"."""
        self.inference_mode = check_inference_mode(mode)

    def interpolation_weights(self, resolution: float) -> Tuple[int, int, float]:
        """``(floor, ceil, w)``: data-free BN = ``(1 - w) * BN(floor) + w * BN(ceil)``,
        ``w = (T - floor) / (ceil - floor)`` (Eq. 1); clamped to the nearest end outside the
        trained range (``floor == ceil``, ``w = 0``)."""
        lowest, highest = self.resolutions[0], self.resolutions[-1]
        if resolution <= lowest:
            return lowest, lowest, 0.0
        if resolution >= highest:
            return highest, highest, 0.0
        floor = max(s for s in self.resolutions if s <= resolution)
        ceil = min(s for s in self.resolutions if s > resolution)
        return floor, ceil, (resolution - floor) / (ceil - floor)

    def begin_calibration(self, resolution: int) -> None:
        """Start re-estimating statistics at ``resolution``: until ``end_calibration``, forwards
        normalise with batch statistics (as a training-mode BN, with the affine parameters of the
        nearest training resolution) and accumulate their average weighted by images, as the
        authors' ``bn_update``: after n images a batch of b enters with momentum b / (n + b), so
        batches i of b_i images give mean = sum b_i m_i / sum b_i and var = sum b_i v_i / sum b_i,
        m_i and v_i the batch's per-channel mean and unbiased variance (Bessel over its
        b_i * H * W values: what BN's running_var takes in; the spread between batch means is
        not added)."""
        reference = self.norm(nearest_resolution(resolution, self.resolutions))
        self._calibration = _Calibration(int(resolution), torch.zeros_like(reference.running_mean),
                                         torch.ones_like(reference.running_var))

    def end_calibration(self, keep: bool) -> None:
        """Finish the calibration; store its statistics if ``keep`` and an image was seen."""
        calibration, self._calibration = self._calibration, None
        if keep and calibration is not None and calibration.samples:
            self.calibrated_statistics[calibration.resolution] = (calibration.mean, calibration.var)

    def forward(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        if self.training:
            return self.norm(resolution)(x)
        if self._calibration is not None:
            return self._calibrating_forward(x, resolution)
        if self.inference_mode == "proxy":
            return self.norm(nearest_resolution(resolution, self.resolutions))(x)
        if self.inference_mode == "data_free":
            return self._data_free_forward(x, resolution)
        return self._ideal_forward(x, resolution)

    def _calibrating_forward(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        calibration = self._calibration
        if resolution != calibration.resolution:
            raise ValueError(
                f"calibrating at resolution {calibration.resolution} but got an input at "
                f"{resolution}: feed batches resized to {calibration.resolution}"
            )
        reference = self.norm(nearest_resolution(resolution, self.resolutions))
        batch_size = x.shape[0]
        calibration.samples += batch_size
        # momentum b / (n + b) turns the running update into the average weighted by images (an
        # empty batch changes nothing)
        momentum = batch_size / max(calibration.samples, 1)
        return F.batch_norm(x, calibration.mean, calibration.var, reference.weight, reference.bias,
                            True, momentum, reference.eps)

    def _data_free_forward(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        floor, ceil, w = self.interpolation_weights(resolution)
        low, high = self.norm(floor), self.norm(ceil)
        mean, var, weight, bias = (
            torch.lerp(getattr(low, name), getattr(high, name), w)
            for name in ("running_mean", "running_var", "weight", "bias")
        )
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, low.eps)

    def _ideal_forward(self, x: torch.Tensor, resolution: int) -> torch.Tensor:
        reference = self.norm(nearest_resolution(resolution, self.resolutions))
        if resolution not in self.calibrated_statistics:
            if resolution in self.resolutions:
                return reference(x)
            raise RuntimeError(
                f"ideal inference at resolution {resolution} needs BN statistics calibrated there "
                f"(calibrated: {sorted(self.calibrated_statistics)}): run "
                f"projects.san.calibrate_batchnorm(backbone, batches, {resolution}) first"
            )
        mean, var = self.calibrated_statistics[resolution]
        return F.batch_norm(x, mean.to(x.device), var.to(x.device), reference.weight,
                            reference.bias, False, 0.0, reference.eps)

    def _load_from_state_dict(self, *args, **kwargs):
        self.calibrated_statistics.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.num_features}, resolutions={self.resolutions}"

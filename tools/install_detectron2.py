#!/usr/bin/env python3
"""Install detectron2 into the current Python environment, pure Python, patched for this stack.

If a detectron2 that was not installed by this script is already importable (e.g. the official
one built from source), it is used as is and nothing is changed. Otherwise the registry sdist
``pb1-detectron2==0.6`` (detectron2 v0.6 Python sources, no C++ sources) is downloaded, the
edits in ``PATCHES`` are applied to its sources (each with the reason it is needed on Python
3.11 / torch 2.x / NumPy 2 / Pillow >= 10; most mirror what detectron2's main branch did later),
and it is installed without building its C++ extension.

Only the standard library is used: this runs before detectron2 exists. torch must already be
installed (detectron2's setup.py imports it).
"""
import argparse
import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

SDIST = "pb1-detectron2==0.6"
# Bump whenever PATCHES or FILES_ADDED change, so existing installs are redone.
PATCH_VERSION = "11"
# Written into the installed package (a module, so that setup.py packages it).
MARKER = "_d2_collection_patches.py"


@dataclasses.dataclass(frozen=True)
class Patch:
    path: str  # relative to the sdist root
    old: str  # regular expression, must match at least once
    new: str
    reason: str


_C_IMPORT = r"from detectron2 import _C\n"
_C_FALLBACK_IMPORT = (
    "try:\n"
    "    from detectron2 import _C\n"
    "except ImportError:  # pure-Python install: C++ ops raise a clear error when used\n"
    "    from detectron2._C_unavailable import _C\n"
)

PATCHES = [
    Patch("setup.py", r"ext_modules=get_extensions\(\),", "ext_modules=[],",
          "the sdist ships no detectron2/layers/csrc, so the C++ extension cannot be built"),
    Patch("setup.py", r'"black==21\.4b2",', '"black",',
          "black 21.4b2 is broken with click >= 8.1; LazyConfig.save only needs black.format_str"),
    Patch("setup.py", r'find_packages\(exclude=\("configs", "tests\*"\)\)',
          'find_packages(exclude=("configs", "tests*", "tools", "tools.*"))',
          "the sdist would install detectron2's tools/ as a top-level `tools` package, shadowing ours"),
    Patch("setup.py", r'\s*"future",.*\n\s*"pydot",.*\n', "\n",
          "future and pydot are only used by caffe2 export, which torch 2 no longer has"),
    Patch("detectron2/layers/nms.py", r"    return torch\.ops\.detectron2\.nms_rotated\(boxes, scores, iou_threshold\)\n",
          "    if not hasattr(torch.ops.detectron2, \"nms_rotated\"):  # no C++ extension loaded\n"
          "        from detectron2._C_unavailable import _C\n\n"
          "        return _C.nms_rotated(boxes, scores, iou_threshold)\n"
          "    return torch.ops.detectron2.nms_rotated(boxes, scores, iou_threshold)\n",
          "nms_rotated is a C++ op: say clearly that it is unavailable instead of a bare AttributeError"),
    Patch("detectron2/layers/deform_conv.py", _C_IMPORT,
          "try:\n"
          "    from detectron2 import _C\n"
          "except ImportError:  # pure-Python install: torchvision's deform_conv2d (end of this file)\n"
          "    _C = None\n",
          "module-level `_C` import made `import detectron2.layers` fail without the extension"),
    Patch("detectron2/layers/deform_conv.py",
          r"deform_conv = _DeformConv\.apply\nmodulated_deform_conv = _ModulatedDeformConv\.apply\n",
          "if _C is None:\n"
          "    from detectron2.layers._deform_conv_torchvision import deform_conv, modulated_deform_conv\n"
          "else:\n"
          "    deform_conv = _DeformConv.apply\n"
          "    modulated_deform_conv = _ModulatedDeformConv.apply\n",
          "deformable convolution (DCN v1 and modulated v2) on CPU and CUDA, forward and backward, "
          "through torchvision's deform_conv2d when the C++ extension is absent"),
    Patch("detectron2/layers/rotated_boxes.py", _C_IMPORT, _C_FALLBACK_IMPORT,
          "module-level `_C` import made `import detectron2.layers` fail without the extension"),
    Patch("detectron2/layers/roi_align_rotated.py", _C_IMPORT, _C_FALLBACK_IMPORT,
          "module-level `_C` import made `import detectron2.layers` fail without the extension"),
    Patch("detectron2/evaluation/coco_evaluation.py",
          r"from detectron2\.evaluation\.fast_eval_api import COCOeval_opt\n",
          "try:\n"
          "    from detectron2.evaluation.fast_eval_api import COCOeval_opt\n"
          "except ImportError:  # neither the C++ extension nor faster-coco-eval: the official COCOeval\n"
          "    COCOeval_opt = COCOeval\n",
          "fast_eval_api imports `_C`, which made `import detectron2.evaluation` fail"),
    Patch("detectron2/evaluation/coco_evaluation.py",
          r"        self\._use_fast_impl = use_fast_impl\n",
          "        if use_fast_impl and COCOeval_opt is COCOeval:\n"
          "            self._logger.info('No fast COCOeval (neither detectron2._C nor faster-coco-eval): '\n"
          "                              'using the official COCOeval.')\n"
          "            use_fast_impl = False\n"
          "        self._use_fast_impl = use_fast_impl\n",
          "use_fast_impl=True (the default) must fall back to COCOeval when no fast COCOeval exists"),
    Patch("detectron2/evaluation/fast_eval_api.py", _C_IMPORT,
          "try:\n"
          "    from detectron2 import _C\n"
          "except ImportError:  # pure-Python install: COCOeval_opt is faster-coco-eval's (end of this file)\n"
          "    _C = None\n",
          "fast COCO evaluation without the C++ extension: faster-coco-eval's C++ COCOeval"),
    Patch("detectron2/evaluation/fast_eval_api.py", r"\Z",  # appended at the end of the file
          "\n\nif _C is None:  # ImportError here (faster-coco-eval missing) makes COCOEvaluator use COCOeval\n"
          "    from detectron2.evaluation._faster_coco_eval import COCOeval_opt  # noqa: F811\n",
          "fast COCO evaluation without the C++ extension: faster-coco-eval's C++ COCOeval"),
    Patch("detectron2/data/transforms/transform.py", r"interp=Image\.LINEAR", "interp=Image.BILINEAR",
          "Image.LINEAR was removed in Pillow 10 (same filter as BILINEAR)"),
    Patch("detectron2/model_zoo/model_zoo.py", r"import pkg_resources\n", "",
          "pkg_resources is gone with setuptools >= 81"),
    Patch("detectron2/model_zoo/model_zoo.py",
          r'pkg_resources\.resource_filename\(\n\s*"detectron2\.model_zoo", os\.path\.join\("configs", config_path\)\n\s*\)',
          'os.path.join(os.path.dirname(__file__), "configs", config_path)',
          "pkg_resources is gone with setuptools >= 81; configs are plain package data"),
    Patch("detectron2/data/datasets/pascal_voc.py", r"dtype=np\.str\)", "dtype=str)",
          "np.str was removed in NumPy 1.24"),
    Patch("detectron2/data/build.py", r"dtype=np\.int\b", "dtype=int",
          "np.int was removed in NumPy 1.24 (used by every training loader)"),
    Patch("detectron2/evaluation/sem_seg_evaluation.py", r"np\.int\b", "int",
          "np.int was removed in NumPy 1.24"),
    Patch("detectron2/evaluation/sem_seg_evaluation.py", r"np\.float\b", "float",
          "np.float was removed in NumPy 1.24"),
    Patch("detectron2/evaluation/pascal_voc_evaluation.py", r"np\.bool\b", "bool",
          "np.bool was removed in NumPy 1.24 (re-added only in NumPy 2)"),
    Patch("detectron2/structures/masks.py", r"np\.bool\b", "bool",
          "np.bool was removed in NumPy 1.24 (re-added only in NumPy 2)"),
    Patch("detectron2/utils/visualizer.py", r"np\.bool\b", "bool",
          "np.bool was removed in NumPy 1.24 (re-added only in NumPy 2)"),
    Patch("detectron2/utils/video_visualizer.py", r"np\.bool\b", "bool",
          "np.bool was removed in NumPy 1.24 (re-added only in NumPy 2)"),
    Patch("detectron2/layers/mask_ops.py", r"np\.array\(mask, copy=False\)", "np.asarray(mask)",
          "np.array(copy=False) raises in NumPy 2 when a copy is needed"),
    Patch("detectron2/data/common.py", r"self\._rng\.sample\(self\._fallback_candidates, k=1\)",
          "self._rng.sample(sorted(self._fallback_candidates), k=1)",
          "random.sample() no longer accepts a set (Python 3.11); hit when a mapper returns None"),
    Patch("detectron2/modeling/meta_arch/retinanet.py", r"get_norm\(norm, 1\)", "get_norm(norm, 32)",
          "GroupNorm(32, 1) raises: RetinaNet heads with GN (and FCOS) could not be built"),
    Patch("detectron2/engine/hooks.py", r"torch\.optim\.lr_scheduler\._LRScheduler\b",
          "torch.optim.lr_scheduler.LRScheduler",
          "torch 2 schedulers derive from LRScheduler: they were silently not checkpointed/resumed"),
    Patch("detectron2/engine/launch.py",
          r'    assert torch\.cuda\.is_available\(\), "cuda is not available\. Please check your installation\."\n',
          "    has_gpu = torch.cuda.is_available()\n",
          "multi-process runs must work on CPU-only machines"),
    Patch("detectron2/engine/launch.py", r'backend="NCCL",', 'backend="NCCL" if has_gpu else "GLOO",',
          "NCCL needs CUDA; gloo is PyTorch's CPU backend"),
    Patch("detectron2/engine/launch.py",
          r"    assert num_gpus_per_machine <= torch\.cuda\.device_count\(\)\n    torch\.cuda\.set_device\(local_rank\)\n",
          "    if has_gpu:\n"
          "        assert num_gpus_per_machine <= torch.cuda.device_count()\n"
          "        torch.cuda.set_device(local_rank)\n",
          "a CPU worker has no CUDA device to select"),
    Patch("detectron2/engine/launch.py", r"\n    main_func\(\*args\)\n$",
          "\n    main_func(*args)\n    comm.synchronize()\n    dist.destroy_process_group()\n",
          "a gloo worker that exits with its process group alive aborts (SIGABRT) on torch 2.x"),
    Patch("detectron2/export/__init__.py", r"from \.api import \*\n",
          "try:\n"
          "    from .api import *  # needs caffe2, which torch 2 no longer ships\n"
          "except ImportError:\n"
          "    pass\n",
          "caffe2 is absent in torch 2; it broke detectron2.export and detectron2.utils.analysis"),
    Patch("detectron2/modeling/anchor_generator.py",
          r"torch\.meshgrid\(shifts_y, shifts_x\)", 'torch.meshgrid(shifts_y, shifts_x, indexing="ij")',
          "torch warns at the first training or inference step when meshgrid's indexing is not given "
          "(ij is its current default: the same grid)"),
    Patch("detectron2/__init__.py", r"\nsetup_environment\(\)\n",
          "\nsetup_environment()\n\n"
          "from detectron2.utils.quiet_jit import import_fvcore_nn_quietly  # noqa: E402\n\n"
          "import_fvcore_nn_quietly()\n",
          "fvcore.nn scripts two functions at import: torch >= 2.x printed a torch.jit.script "
          "FutureWarning for each before any command's own output"),
    Patch("detectron2/modeling/box_regression.py", r"\nimport torch\n",
          "\nimport torch\n\nfrom detectron2.utils.quiet_jit import script_quietly\n",
          "box_regression scripts two classes at import (torch.jit.script FutureWarnings at start-up)"),
    Patch("detectron2/modeling/box_regression.py", r"\n@torch\.jit\.script\nclass ",
          "\n@script_quietly\nclass ",
          "box_regression scripts two classes at import (torch.jit.script FutureWarnings at start-up)"),
]

# New files, relative to the sdist root.
FILES_ADDED = {
    "detectron2/_C_unavailable.py": '''\
"""Stand-in for detectron2._C when detectron2 was installed without its C++/CUDA extension."""


class _UnavailableExtension:
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            f"detectron2._C.{name} is unavailable: this detectron2 was installed as pure Python "
            "from the pb1-detectron2 sdist, which ships no C++/CUDA sources. Rotated boxes "
            "(nms_rotated, box_iou_rotated, ROIAlignRotated, RRPN) need detectron2 built from "
            "source (see detectron2's INSTALL.md); deformable convolution and fast COCO evaluation "
            "work without it (torchvision, faster-coco-eval)."
        )


_C = _UnavailableExtension()
''',
    "detectron2/layers/_deform_conv_torchvision.py": '''\
"""detectron2's ``deform_conv`` and ``modulated_deform_conv`` without its C++ extension: torchvision's
``deform_conv2d``, which has CPU and CUDA kernels for the forward and the backward pass. Its offset
and mask layouts are detectron2's: per deformable group, per kernel position, (dy, dx) and one mask
value; weight groups and deformable groups follow from the tensor shapes, checked here."""
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d


def _check_shapes(input, offset, mask, weight, groups, deformable_groups):
    if input.dim() != 4:
        raise ValueError(f"Expected 4D tensor as input, got {input.dim()}D tensor instead.")
    kernel_h, kernel_w = weight.shape[2:]
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"input has {input.shape[1]} channels; weight {tuple(weight.shape)} with "
                         f"groups={groups} needs {weight.shape[1] * groups}")
    positions = deformable_groups * kernel_h * kernel_w
    if offset.shape[1] != 2 * positions:
        raise ValueError(f"offset has {offset.shape[1]} channels; deformable_groups={deformable_groups} "
                         f"with a {kernel_h}x{kernel_w} kernel needs 2 * {positions} = {2 * positions}")
    if mask is not None and mask.shape[1] != positions:
        raise ValueError(f"mask has {mask.shape[1]} channels; deformable_groups={deformable_groups} "
                         f"with a {kernel_h}x{kernel_w} kernel needs {positions}")


def deform_conv(input, offset, weight, stride=1, padding=0, dilation=1, groups=1, deformable_groups=1,
                im2col_step=64):
    """Deformable convolution v1; ``im2col_step`` (batching of detectron2's CUDA kernel) is
    accepted for its signature and has no effect here."""
    _check_shapes(input, offset, None, weight, groups, deformable_groups)
    return deform_conv2d(input, offset, weight, stride=_pair(stride), padding=_pair(padding),
                         dilation=_pair(dilation))


def modulated_deform_conv(input, offset, mask, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                          deformable_groups=1):
    """Modulated deformable convolution (v2): each sample is scaled by its ``mask`` value."""
    _check_shapes(input, offset, mask, weight, groups, deformable_groups)
    return deform_conv2d(input, offset, weight, bias, stride=_pair(stride), padding=_pair(padding),
                         dilation=_pair(dilation), mask=mask)
''',
    "detectron2/evaluation/_faster_coco_eval.py": '''\
"""``COCOeval_opt`` for a detectron2 without its C++ extension: faster-coco-eval's C++
``evaluate()`` and ``accumulate()`` (a maintained descendant of detectron2's own fast COCOeval), run
on the pycocotools ``COCO`` objects that ``COCOEvaluator`` passes, with pycocotools' ``summarize()``:
the same printed summary and the same ``stats`` as the official COCOeval."""
from faster_coco_eval import COCOeval_faster
from pycocotools.cocoeval import COCOeval


class COCOeval_opt(COCOeval_faster):
    summarize = COCOeval.summarize

    def __init__(self, cocoGt=None, cocoDt=None, iouType="segm"):
        if cocoGt is not None and not hasattr(cocoGt, "cat_img_map"):
            cocoGt.cat_img_map = cocoGt.catToImgs  # faster-coco-eval's name of this pycocotools index
        super().__init__(cocoGt, cocoDt, iouType)
        if cocoGt is not None:  # pycocotools evaluates every category, for keypoints too
            self.params.catIds = sorted(cocoGt.getCatIds())
''',
    "detectron2/utils/quiet_jit.py": '''\
"""``torch.jit.script`` without its deprecation warning, for what detectron2 and fvcore script while
they are imported: torch >= 2.x warns at each call, so every command printed four FutureWarnings
before its own output. Only these import-time calls are quiet; a user's own ``torch.jit.script``
still warns."""
import warnings

import torch

_DEPRECATION = r"`torch\\.jit\\.script` is deprecated"


def script_quietly(obj):
    """``@torch.jit.script`` as a decorator; a class's names resolve in the caller's module, as
    with the plain decorator (``_frames_up``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=FutureWarning)
        return torch.jit.script(obj, _frames_up=1)


def import_fvcore_nn_quietly():
    """Import ``fvcore.nn``, which scripts its focal losses on import (later imports are cached)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION, category=FutureWarning)
        import fvcore.nn  # noqa: F401
''',
}


def find_detectron2():
    """Return (directory of the importable detectron2 or None, whether this script patched it)."""
    spec = importlib.util.find_spec("detectron2")
    if spec is None or not spec.submodule_search_locations:
        return None, False
    location = list(spec.submodule_search_locations)[0]
    marker = os.path.join(location, MARKER)
    if not os.path.exists(marker):
        return location, False
    with open(marker) as f:
        return location, f.readline().strip() == f"PATCH_VERSION = {PATCH_VERSION!r}"


def apply_patches(root):
    for patch in PATCHES:
        path = os.path.join(root, patch.path)
        with open(path) as f:
            text = f.read()
        text, count = re.subn(patch.old, lambda _: patch.new, text)
        if count == 0:
            raise RuntimeError(
                f"patch for {patch.path} ({patch.reason}) did not apply: is {SDIST} still the "
                "sdist this script was written for?"
            )
        with open(path, "w") as f:
            f.write(text)
    for relpath, text in FILES_ADDED.items():
        with open(os.path.join(root, relpath), "w") as f:
            f.write(text)
    with open(os.path.join(root, "detectron2", MARKER), "w") as f:
        f.write(f"PATCH_VERSION = {PATCH_VERSION!r}\n")
        f.write('"""Edits made by the d2 collection\'s tools/install_detectron2.py:\n\n')
        f.write("".join(f"{p.path}: {p.reason}\n" for p in PATCHES) + '"""\n')
    # setup.py packages model-zoo configs from ./configs (absent in the sdist) by symlinking it
    # to detectron2/model_zoo/configs: move them there so they are installed.
    shutil.move(os.path.join(root, "detectron2", "model_zoo", "configs"), os.path.join(root, "configs"))


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def install(workdir):
    try:
        pip("download", "--no-deps", "--no-build-isolation", "--quiet", "-d", workdir, SDIST)
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"could not download {SDIST} (see pip's message above). pip >= 25 refuses its metadata "
            "(a direct-URL extra): install the pip of requirements.txt first "
            "(`python -m pip install 'pip==24.3.*'`); torch must already be installed."
        ) from error
    (archive,) = [f for f in os.listdir(workdir) if f.endswith(".tar.gz")]
    with tarfile.open(os.path.join(workdir, archive)) as tar:
        tar.extractall(workdir, filter="data")
    (root,) = [os.path.join(workdir, d) for d in os.listdir(workdir)
               if os.path.isdir(os.path.join(workdir, d))]
    apply_patches(root)
    pip("install", "--no-deps", "--no-build-isolation", "--quiet", root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true",
                        help="reinstall the patched sdist even if detectron2 is importable")
    parser.add_argument("--list-patches", action="store_true", help="print the edits and exit")
    args = parser.parse_args()
    if args.list_patches:
        for patch in PATCHES:
            print(f"{patch.path}: {patch.reason}")
        return
    location, ours_current = find_detectron2()
    if location and not args.force:
        if ours_current:
            print(f"detectron2 (patched {SDIST}, patch version {PATCH_VERSION}) at {location}")
            return
        if not os.path.exists(os.path.join(location, MARKER)):
            print(f"using the detectron2 already installed at {location}, unchanged")
            return
    with tempfile.TemporaryDirectory(prefix="d2-install-") as workdir:
        install(workdir)
    print(f"installed {SDIST} as pure Python with {len(PATCHES)} patches "
          f"(list them with --list-patches)")


if __name__ == "__main__":
    main()

"""The detectron2 project collection as a package: ``pip install .`` into an environment that has
torch and detectron2 (official detectron2 built from source, or ``tools/install_detectron2.py``).

The requirements below are compatible ranges, so that installing never replaces a user's torch;
``requirements.txt`` pins the exact versions that ``./run.sh`` and CI use. Like detectron2, the
package does not require an OpenCV wheel (opencv-python, -headless and -contrib all provide
``cv2`` and must not be installed side by side): install the one you want, or ``.[opencv]`` for
the contrib build that ResNet-WS's Selective Search needs. The configs ship inside the package
(``projects/common/configs``) and are found by name, like detectron2's model zoo configs.
"""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithConfigs(build_py):
    """Copies configs/ into the built package as ``projects/common/configs`` (an editable install
    reads the checkout's configs/ directly)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = os.path.join(self.build_lib, "projects", "common", "configs")
        shutil.copytree(os.path.join(HERE, "configs"), target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(
    name="d2-project-collection",
    version="0.2.0",
    description="Five computer-vision papers as detectron2 projects sharing one LazyConfig launcher",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["projects", "projects.*", "dap", "dap.*", "tied_conv", "tied_conv.*"]),
    python_requires=">=3.10",
    install_requires=[
        # detectron2 itself is not on PyPI: official detectron2 from source, or tools/install_detectron2.py
        "torch>=2.0",
        "torchvision>=0.15",
        "fvcore>=0.1.5.post20221221",
        "iopath>=0.1.9",
        "omegaconf>=2.1",
        "hydra-core>=1.1",
        "pycocotools>=2.0.2",
        "faster-coco-eval>=1.8,<2",  # fast COCO evaluation where detectron2 has no C++ extension
        "shapely>=1.8",  # detectron2's crop of polygon annotations
        "numpy>=1.23",
        "scipy>=1.9",  # MCG / Selective Search .mat proposal files (projects/resnet_ws)
        "matplotlib>=3.5",
        "tabulate>=0.8.3",  # the "github" table format
        "tqdm>=4.29",
    ],
    extras_require={
        "opencv": ["opencv-contrib-python-headless>=4.5"],
        "dev": ["pytest>=7", "onnx>=1.14", "onnxscript>=0.1", "onnxruntime>=1.16"],
    },
    entry_points={
        "console_scripts": [
            "d2c-train=projects.common.engine:run",
            "d2c-demo=projects.common.demo:main",
            "d2c-export=projects.common.export:main",
            "d2c-pseudo-boxes=dap.generate_pseudo_boxes:main",
            "d2c-proposals=projects.resnet_ws.proposals:main",
            "d2c-convert-checkpoint=projects.common.checkpoint:main",
        ]
    },
    cmdclass={"build_py": BuildPyWithConfigs},
)

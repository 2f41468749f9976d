"""Installable detectron2 project collection: ``pip install -e .`` (detectron2 itself comes from
``tools/install_detectron2.py``; ``./run.sh`` does both)."""
import os

from setuptools import find_packages, setup


def read_requirements():
    """Runtime requirements from requirements.txt, the one place where versions are pinned."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
    runtime = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("# --- tools and tests"):
                break
            if line and not line.startswith("#"):
                runtime.append(line)
    return runtime


setup(
    name="d2-project-collection",
    version="0.1.0",
    description="Five computer-vision papers as detectron2 projects sharing one LazyConfig launcher",
    packages=find_packages(include=["projects", "projects.*", "dap", "dap.*", "tied_conv", "tied_conv.*"]),
    python_requires=">=3.10",
    install_requires=read_requirements(),
)

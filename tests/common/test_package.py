"""The collection as an installed package: built and installed into a separate environment (which
sees this environment's torch and detectron2, not the checkout), it imports every module, finds
its configs (LazyConfigs and YAML configs) by name and trains through its console entry point from
another directory."""
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

pytestmark = pytest.mark.slow  # trains or installs: the slow tier (pytest -m "not slow" skips it)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("projects", "dap", "tied_conv")


def source_files():
    """The checkout's files as git sees them (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode()
    return [f for f in listed.split("\0") if f and os.path.isfile(os.path.join(REPO, f))]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, bin folder, site-packages) of a new environment with the package installed from a
    copy of the sources; this environment's site-packages is on its path as a plain folder, so its
    dependencies are found but the editable install of the checkout is not."""
    root = tmp_path_factory.mktemp("installed")
    source = root / "src"
    for name in source_files():
        os.makedirs(source / os.path.dirname(name), exist_ok=True)
        with open(os.path.join(REPO, name), "rb") as f_in, open(source / name, "wb") as f_out:
            f_out.write(f_in.read())
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = str(env / "bin" / "python")
    site_packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site_packages, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    str(source)], check=True, cwd=root)
    return python, str(env / "bin"), site_packages


def run_elsewhere(command, tmp_path, **kwargs):
    environment = dict(os.environ, DETECTRON2_DATASETS=os.path.join(REPO, "datasets"), OMP_NUM_THREADS="1")
    environment.pop("PYTHONPATH", None)
    return subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, **kwargs)


def test_installed_package_imports_every_module_and_finds_its_configs(installed, tmp_path):
    python, _, site_packages = installed
    script = textwrap.dedent(f"""
        import importlib, os, pkgutil
        for package in {PACKAGES!r}:
            module = importlib.import_module(package)
            assert module.__file__.startswith({site_packages!r}), module.__file__
            for info in pkgutil.walk_packages(module.__path__, package + "."):
                importlib.import_module(info.name)
        try:
            import train_net
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("the launcher script is importable: " + train_net.__file__)
        from projects.common.config import get_config, get_config_file, list_configs
        path = get_config_file("dap/synthetic_classifier_cpu.py")
        assert path.startswith({site_packages!r}), path
        assert get_config("dap/synthetic_classifier_cpu.py").model.num_classes == 8
        from detectron2.modeling import build_model
        from projects.common.config import get_cfg
        cfg = get_cfg()  # the YAML configs ship too, with their bases, and build
        cfg.merge_from_file(get_config_file("msad/yacs/synthetic_fcos_student_cpu.yaml"))
        assert type(build_model(cfg)).__name__ == "AlignedDistillationStudent"
        print(len(list_configs()), "configs")
    """)
    result = run_elsewhere([python, "-c", script], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[0]) > 100


def test_installed_entry_point_trains_a_config_by_name(installed, tmp_path):
    _, bin_folder, _ = installed
    output_dir = tmp_path / "run"
    result = run_elsewhere(
        [os.path.join(bin_folder, "d2c-train"), "--config-file", "smoke/classifier_R18_synthetic.py",
         f"train.output_dir={output_dir}", "train.max_iter=2", "train.eval_period=0", "train.log_period=1",
         "dataloader.train.total_batch_size=4", "dataloader.train.num_workers=0"],
        tmp_path, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (output_dir / "model_final.pth").is_file()
    for tool in ("d2c-demo", "d2c-pseudo-boxes", "d2c-proposals", "d2c-convert-checkpoint"):
        help_text = run_elsewhere([os.path.join(bin_folder, tool), "--help"], tmp_path, timeout=300)
        assert help_text.returncode == 0 and "usage:" in help_text.stdout, (tool, help_text.stderr[-2000:])

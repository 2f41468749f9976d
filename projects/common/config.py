"""The collection's configs, found by name like detectron2's model zoo configs, and the yacs
config (``get_cfg``) that lets detectron2's ``DefaultPredictor`` build every project's models.

A config is named by its path under ``configs/`` (``"dap/synthetic_classifier_cpu.py"``, or a
YAML config such as ``"msad/yacs/synthetic_fcos_teacher_cpu.yaml"``). In a source checkout the names
resolve to the repository's ``configs/``; an installed package carries a copy of that folder as
package data (``projects/common/configs``, written by ``setup.py``).
"""
import difflib
import inspect
import numbers
import os
from typing import Iterator, List, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf

from detectron2.config import CfgNode, LazyConfig
from detectron2.config import get_cfg as get_detectron2_cfg
from detectron2.utils.registry import locate

from .runtime import resolve_device

__all__ = [
    "UnknownConfigKeyError",
    "add_common_config",
    "apply_overrides",
    "configs_root",
    "get_cfg",
    "get_config",
    "get_config_file",
    "list_configs",
    "resolve_config_file",
]

_INSTALLED_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_CHECKOUT_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")


def configs_root() -> str:
    """The folder that holds the collection's configs (installed copy first, then the checkout's)."""
    for root in (_INSTALLED_CONFIGS, _CHECKOUT_CONFIGS):
        if os.path.isdir(os.path.join(root, "common")):
            return root
    raise FileNotFoundError(
        f"the collection's configs are neither installed ({_INSTALLED_CONFIGS}) nor in a source checkout "
        f"({_CHECKOUT_CONFIGS}): reinstall the package (pip install .) from a full clone"
    )


def list_configs() -> List[str]:
    """Names of every LazyConfig file, e.g. ``"smoke/faster_rcnn_R18_FPN_synthetic.py"`` (the YAML
    configs under ``<project>/yacs/`` are found by name too, see ``get_config_file``)."""
    root = configs_root()
    names = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        names += [os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/") for f in files if f.endswith(".py")]
    return sorted(names)


def get_config_file(config_path: str) -> str:
    """The absolute path of the config named ``config_path`` (relative to ``configs/``; a leading
    ``configs/`` is accepted too)."""
    name = config_path[len("configs/"):] if config_path.startswith("configs/") else config_path
    path = os.path.join(configs_root(), name)
    if not os.path.isfile(path):
        close_matches = difflib.get_close_matches(name, list_configs(), n=5, cutoff=0.5)
        raise FileNotFoundError(
            f"{config_path!r} is neither a config file nor the name of one of the collection's configs "
            f"(under {configs_root()}). Close matches: {close_matches or 'none'}; "
            "projects.common.config.list_configs() lists them all"
        )
    return path


def resolve_config_file(config_file: str) -> str:
    """``config_file`` itself when it is a file, else the path of the config it names."""
    return config_file if os.path.isfile(config_file) else get_config_file(config_file)


def get_config(config_path: str):
    """The LazyConfig named ``config_path`` (see ``get_config_file``), loaded."""
    return LazyConfig.load(get_config_file(config_path))


def add_common_config(cfg: CfgNode) -> None:
    """Add the options of the models every project shares (``projects.common.modeling``):
    MODEL.CLASSIFIER (``ImageClassifier``), MODEL.FCOS and MODEL.RESNETS.WIDTH (the scaled ResNet
    builders). Options already present keep their values, so each project's
    ``add_<project>_config`` calls it first."""
    from .modeling import add_classifier_config, add_fcos_config, add_scaled_resnet_config

    if "CLASSIFIER" not in cfg.MODEL:
        add_classifier_config(cfg)
    if "FCOS" not in cfg.MODEL:
        add_fcos_config(cfg)
    if "WIDTH" not in cfg.MODEL.RESNETS:
        add_scaled_resnet_config(cfg)


def get_cfg() -> CfgNode:
    """detectron2's ``get_cfg()`` extended with the options of every project (``add_common_config``
    and each ``add_<project>_config``), so that detectron2's ``DefaultPredictor`` (and any yacs
    tool) builds the collection's models from the YAML configs under ``configs/<project>/yacs/``.
    Importing the projects here registers their models. MODEL.DEVICE is CUDA when this machine
    has it, else the CPU (detectron2's default is always CUDA)."""
    from projects.msad.config import add_msad_config
    from projects.resnet_ws.config import add_resnet_ws_config
    from projects.san.config import add_san_config
    from tied_conv import add_tied_resnest_config, add_tied_resnet_config

    cfg = get_detectron2_cfg()
    add_common_config(cfg)
    add_tied_resnet_config(cfg)
    add_tied_resnest_config(cfg)
    add_msad_config(cfg)
    add_resnet_ws_config(cfg)
    add_san_config(cfg)
    cfg.MODEL.DEVICE = resolve_device("auto")
    return cfg


class UnknownConfigKeyError(KeyError):
    """An override names a key the config does not have."""

    def __str__(self):  # KeyError would quote the whole message
        return str(self.args[0])


def apply_overrides(cfg, overrides: Sequence[str]):
    """``LazyConfig.apply_overrides`` that refuses what would pass silently or fail obscurely: a
    key the config does not have (a typo such as ``train.max_itr=10``; ``+key=value`` adds one on
    purpose) names the closest existing keys; a number given a non-number (``optimizer.lr=abc``)
    names the value; a launcher option among the overrides (``--resume``) says where it goes.
    A key below a LazyCall node may be any parameter of its callable (its defaults are not in the
    config)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    for override in overrides:
        if override.startswith("-"):
            raise ValueError(
                f"{override!r} is among the key=value overrides: launcher options such as --resume and "
                "--eval-only go before them (d2c-train --config-file CFG --resume key=value ...)"
            )
    parser = OverridesParser.create()
    for override in overrides:
        try:
            (parsed,) = parser.parse_overrides([override])
        except HydraException as error:
            raise ValueError(f"cannot parse the override {override!r} (key=value expected): {error}") from error
        key = parsed.key_or_group
        if parsed.is_add():
            continue
        if not _has_key(cfg, key.split(".")):
            close = difflib.get_close_matches(key, list(_config_keys(cfg)), n=4, cutoff=0.6)
            raise UnknownConfigKeyError(
                f"override {override!r}: the config has no key {key!r}. Closest keys: {close or 'none'}. "
                f"To add a key on purpose write +{key}=..."
            )
        _check_type(cfg, key, parsed.value(), override)
    return LazyConfig.apply_overrides(cfg, list(overrides))


def _target_accepts(target, name: str) -> bool:
    """Whether a LazyCall target (callable or its dotted name) takes a parameter ``name``."""
    if isinstance(target, str):
        target = locate(target)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # no signature to inspect: cannot tell, so allow
        return True
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _has_key(node, parts: List[str]) -> bool:
    for depth, part in enumerate(parts):
        if isinstance(node, DictConfig):
            if part in node:
                node = node._get_node(part)
                node = node._value() if not isinstance(node, (DictConfig, ListConfig)) else node
            elif "_target_" in node and _target_accepts(node._get_node("_target_")._value(), part):
                return True  # a parameter of the callable; what lies below it cannot be checked
            else:
                return False
        elif isinstance(node, ListConfig):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                return False
            node = node[int(part)]
        else:
            return False
    return True


def _config_keys(node, prefix: str = "") -> Iterator[str]:
    """Every dotted key of a config (LazyCall parameters included), for suggestions."""
    if isinstance(node, DictConfig):
        names = [k for k in node.keys() if k != "_target_"]
        if "_target_" in node:
            target = node._get_node("_target_")._value()
            try:
                target = locate(target) if isinstance(target, str) else target
                names += [n for n, p in inspect.signature(target).parameters.items()
                          if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n not in node]
            except (TypeError, ValueError):
                pass
        for name in names:
            key = f"{prefix}{name}"
            yield key
            if name in node:
                child = node._get_node(name)
                if isinstance(child, (DictConfig, ListConfig)):
                    yield from _config_keys(child, key + ".")
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            child = node._get_node(index)
            if isinstance(child, (DictConfig, ListConfig)):
                yield from _config_keys(child, f"{prefix}{index}.")


def _check_type(cfg, key: str, value, override: str) -> None:
    """A number in the config is not replaced by text (a typo such as ``lr=0.O1`` fails here, not
    deep in the optimizer); lists and ``null`` stay possible (e.g. several short edges)."""
    current = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
    is_number = isinstance(current, numbers.Number) and not isinstance(current, bool)
    if is_number and isinstance(value, str):
        raise ValueError(f"override {override!r}: {key} is a number in the config ({current!r}), "
                         f"not {value!r}: give a number")

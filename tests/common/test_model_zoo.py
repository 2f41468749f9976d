"""MODEL_ZOO.md as a user runs it: every conversion command parses and names a format, and its config
takes its overrides; every evaluation command's config takes its overrides; the modules and
configs it names exist, its links resolve, and the README links it."""
import os
import re
import shlex

import pytest

from projects.common.checkpoint import cli
from projects.common.engine import load_config, parse_args

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_ZOO = os.path.join(REPO, "MODEL_ZOO.md")


def commands():
    """The shell commands of MODEL_ZOO.md's ```bash blocks (continuations joined, comments and
    the generic template with placeholders left out)."""
    with open(MODEL_ZOO) as f:
        blocks = re.findall(r"^```bash\n(.*?)^```", f.read(), flags=re.M | re.S)
    found = []
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split(" #")[0].strip()
            template = "DOWNLOADED_FILE" in command or "CONFIG " in command
            if command and not command.startswith("#") and not template:
                found.append(shlex.split(command))
    return found


CONVERTER, LAUNCHER = ["python", "-m", "projects.common.checkpoint"], ["python", "train_net.py"]
CONVERSIONS = [c[3:] for c in commands() if c[:3] == CONVERTER]
EVALUATIONS = [c[2:] for c in commands() if c[:2] == LAUNCHER]
OTHERS = [c for c in commands() if c[:3] != CONVERTER and c[:2] != LAUNCHER]


def test_the_model_zoo_has_commands_of_every_format():
    formats = {arguments[arguments.index("--from") + 1] for arguments in CONVERSIONS if "--from" in arguments}
    assert formats == set(cli.FORMATS) - {"classifier"} | {cli.DAP_SPLIT}
    assert len(EVALUATIONS) >= 10 and OTHERS


@pytest.mark.parametrize("arguments", CONVERSIONS, ids=lambda arguments: " ".join(arguments[:2]))
def test_conversion_command_parses_and_its_config_takes_the_overrides(arguments):
    parser = cli._parser()
    args = parser.parse_args(arguments)
    cli._check_arguments(parser, args)
    if args.config:
        cfg = cli.load_config_with_overrides(args.config, args.overrides)
        assert "model" in cfg


@pytest.mark.parametrize("arguments", EVALUATIONS, ids=lambda arguments: arguments[1])
def test_evaluation_command_config_takes_the_overrides(arguments):
    args = parse_args(arguments)
    cfg = load_config(args.config_file, args.opts)
    assert cfg.model


@pytest.mark.parametrize("command", OTHERS, ids=lambda command: " ".join(command[:3]))
def test_other_commands_name_existing_modules(command):
    assert command[:2] == ["python", "-m"], command
    module = os.path.join(REPO, *command[2].split("."))
    assert os.path.isfile(module + ".py"), command[2]


def test_links_resolve_and_the_readme_links_the_model_zoo():
    with open(MODEL_ZOO) as f:
        text = f.read()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = os.path.join(REPO, path) if path else MODEL_ZOO
        assert os.path.exists(linked), target
        if anchor:
            with open(linked) as f:
                headings = re.findall(r"^#+ (.+)$", f.read(), flags=re.M)
            assert anchor in {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}, target
    with open(os.path.join(REPO, "README.md")) as f:
        assert "](MODEL_ZOO.md)" in f.read()

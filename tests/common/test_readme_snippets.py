"""The READMEs as a user reads them: their ```python blocks run as written, in a working
directory prepared the way the README says (the smoke model trained, here for 2 iterations, and
the embedded data under ./datasets); the files, configs and modules their ```bash blocks name
exist; their relative links resolve; each project README names its paper with a link, the
authors' code and a BibTeX block; and nothing points to material outside the repository."""
import os
import re

import pytest

from projects.common import engine

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT_READMES = [
    "tied_conv/README.md",
    "dap/README.md",
    "projects/resnet_ws/README.md",
    "projects/msad/README.md",
    "projects/san/README.md",
]
READMES = ["README.md", *PROJECT_READMES]
SMOKE_CHECKPOINT = "output/smoke_faster_rcnn_R18_FPN_synthetic/model_final.pth"


def read(readme):
    with open(os.path.join(REPO, readme)) as f:
        return f.read()


def code_blocks(readme, language):
    """The contents of the README's fenced ```<language> blocks, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", read(readme), flags=re.M | re.S)


PYTHON_SNIPPETS = [
    pytest.param(code, id=f"{readme}:{index}")
    for readme in READMES
    for index, code in enumerate(code_blocks(readme, "python"))
]


def test_the_top_level_readme_has_a_python_snippet():
    assert code_blocks("README.md", "python"), "README.md lost its inference snippet"


@pytest.fixture(scope="module")
def readme_workdir(tmp_path_factory):
    """A fresh working directory as after ``./run.sh smoke``: ``datasets`` (the embedded data,
    linked to the data folder of the repository or of $DETECTRON2_DATASETS) and the smoke
    config's ``model_final.pth``, trained through the launcher for 2 iterations."""
    workdir = tmp_path_factory.mktemp("readme")
    data_root = os.path.abspath(os.environ.get("DETECTRON2_DATASETS", os.path.join(REPO, "datasets")))
    os.makedirs(data_root, exist_ok=True)
    os.symlink(data_root, workdir / "datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.delenv("DETECTRON2_DATASETS", raising=False)  # ./datasets, as a user's checkout
        engine.main(engine.parse_args([
            "--config-file", "smoke/faster_rcnn_R18_FPN_synthetic.py",
            "train.max_iter=2", "train.eval_period=2", "train.log_period=1",
            "train.checkpointer.period=2", "lr_multiplier.warmup_iters=1",
            "dataloader.train.total_batch_size=2", "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ]))
    assert (workdir / SMOKE_CHECKPOINT).is_file()
    return workdir


@pytest.mark.slow
@pytest.mark.parametrize("code", PYTHON_SNIPPETS)
def test_python_snippet_runs_as_written(code, readme_workdir, monkeypatch, capsys):
    monkeypatch.chdir(readme_workdir)
    monkeypatch.delenv("DETECTRON2_DATASETS", raising=False)
    namespace = {"__name__": "__main__"}
    exec(compile(code, "<README snippet>", "exec"), namespace)
    if "LazyPredictor" in code:
        assert "detections:" in capsys.readouterr().out
        assert hasattr(namespace["instances"], "pred_boxes")


def named_scripts(code):
    """``*.py`` paths a shell block names (``train_net.py``, ``tools/demo.py``,
    ``configs/.../x.py``; config names relative to ``configs/`` too)."""
    return set(re.findall(r"(?<![\w/.{}$<-])((?:[\w-]+/)*[\w-]+\.py)\b", code))


def named_modules(code):
    return set(re.findall(r"python -m ([\w.]+)", code))


@pytest.mark.parametrize("readme", READMES)
def test_shell_blocks_name_existing_scripts_configs_and_modules(readme):
    blocks = code_blocks(readme, "bash")
    missing = []
    for code in blocks:
        for path in named_scripts(code):
            if not any(os.path.isfile(os.path.join(REPO, root, path)) for root in ("", "configs")):
                missing.append(path)
        for module in named_modules(code):
            if module == "pytest":
                continue
            base = os.path.join(REPO, *module.split("."))
            if not (os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__main__.py"))):
                missing.append(f"python -m {module}")  # a package runs with -m only with a __main__.py
    assert not missing, f"{readme} names what does not exist: {sorted(set(missing))}"


def heading_anchors(text):
    """GitHub's anchors of the markdown headings of ``text``."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("readme", READMES)
def test_relative_links_and_images_resolve(readme):
    text = read(readme)
    folder = os.path.dirname(os.path.join(REPO, readme))
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'<img src="([^"]+)"', text)
    broken = []
    for target in targets:
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(REPO, readme)
        if not os.path.exists(linked):
            broken.append(target)
        elif anchor and linked.endswith(".md"):
            with open(linked) as f:
                if anchor not in heading_anchors(f.read()):
                    broken.append(target)
    assert not broken, f"{readme}: broken links {broken}"


@pytest.mark.parametrize("readme", PROJECT_READMES)
def test_project_readme_links_paper_and_authors_code_and_has_bibtex(readme):
    text = read(readme)
    head = text.split("\n## ", 1)[0]  # the paragraphs above the first section
    assert re.search(r"\]\(https://(arxiv\.org/abs/\d{4}\.\d{4,5}|doi\.org/10\.[\d.]+/\S+)\)", head), readme
    assert re.search(r"\]\(https://github\.com/[\w.-]+/[\w.-]+\)", head), readme
    assert "\n## Citing\n" in text, readme
    (bibtex,) = code_blocks(readme, "bibtex")
    assert re.match(r"@inproceedings\{[\w-]+,\n", bibtex), bibtex
    for field in ("title", "author", "booktitle", "year"):
        assert re.search(rf"^  {field}\s*= \{{.+\}},?$", bibtex, flags=re.M), (readme, field)
    assert bibtex.count("{") == bibtex.count("}"), bibtex


def test_top_level_readme_links_every_paper_and_authors_repository():
    text = read("README.md")
    for readme in PROJECT_READMES:
        head = read(readme).split("\n## ", 1)[0]
        paper = re.search(r"\]\((https://(?:arxiv\.org|doi\.org)/[^)]+)\)", head).group(1)
        code = re.search(r"\]\((https://github\.com/[^)]+)\)", head).group(1)
        assert paper in text and code in text, (readme, paper, code)


OUTSIDE_MATERIAL = re.compile(r"seeds/\d|shared/(seeds|notes)|notes/\w+\.md|\bpaper 00\d|\(issue \d", re.I)


@pytest.mark.parametrize("readme", READMES)
def test_readme_points_nowhere_outside_the_repository(readme):
    text = read(readme)
    assert not OUTSIDE_MATERIAL.findall(text), OUTSIDE_MATERIAL.findall(text)
    assert not re.findall(r"\bissue \d+", text, flags=re.I), readme


def test_code_points_nowhere_outside_the_repository():
    offenders = []
    for root in ("benchmarks", "configs", "dap", "projects", "tests", "tied_conv", "tools"):
        for folder, subfolders, files in os.walk(os.path.join(REPO, root)):
            subfolders[:] = [d for d in subfolders if d != "__pycache__"]
            for name in files:
                if not name.endswith(".py") or name == os.path.basename(__file__):
                    continue
                path = os.path.join(folder, name)
                with open(path) as f:
                    for number, line in enumerate(f, 1):
                        if OUTSIDE_MATERIAL.search(line):
                            offenders.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)

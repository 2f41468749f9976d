"""
The backbone x method matrix of the collection: which cells exist, and why the others cannot.

    python -m projects.combinations.matrix      # the README's table (markdown)

A method needs backbone forms (``projects.combinations.backbones.FORMS``); a cell exists when the
backbone has them. DAP needs two: its classifier and CAMs (steps 1-2) the classification form,
its detector (steps 3-4) the pyramid form, so a backbone with only the first has a partial cell.
``tests/common/test_combinations.py`` builds every existing cell and runs one CPU training step,
and checks that every missing one raises the error given here.
"""
import dataclasses
from typing import Dict, Tuple

from .backbones import BACKBONES, FORMS

__all__ = ["METHODS", "Method", "cell", "markdown_table"]


@dataclasses.dataclass(frozen=True)
class Method:
    title: str
    forms: Tuple[str, ...]  # the backbone form each part needs
    parts: Tuple[str, ...] = ()  # the parts' names when there are several (DAP's steps 1-2: classifier and
    # CAM pseudo boxes; steps 3-4: detector pre-training and fine-tuning)


METHODS: Dict[str, Method] = {
    "classification": Method("classification", ("classification",)),
    "dap": Method("DAP", ("classification", "pyramid"), ("steps 1-2", "steps 3-4")),
    "msad_teacher": Method("MSAD teacher (FCOS)", ("pyramid",)),
    "msad_student": Method("MSAD student (FCOS)", ("pyramid",)),
    "wsod": Method("WSOD (WSDDN / OICR + RAN)", ("feature_map",)),
    "faster_rcnn": Method("Faster R-CNN", ("pyramid",)),
    "mask_rcnn": Method("Mask R-CNN", ("pyramid",)),
    "retinanet": Method("RetinaNet", ("pyramid",)),
    "fcos": Method("FCOS", ("pyramid",)),
}
def cell(backbone: str, method: str) -> Tuple[bool, str]:
    """(whether the method's parts all exist for the backbone, the README's cell text)."""
    entry, spec = BACKBONES[backbone], METHODS[method]
    missing = [form for form in spec.forms if form in entry.missing_forms]
    if not missing:
        return True, "tested"
    why = entry.missing_forms[missing[0]].summary
    if len(missing) == len(spec.forms):
        return False, f"n/a: {why}"
    parts = dict(zip(spec.forms, spec.parts))
    tested = [parts[form] for form in spec.forms if form not in missing]
    return False, f"{', '.join(tested)} tested; {parts[missing[0]]} n/a: {why}"


def markdown_table() -> str:
    """Rows backbones, columns methods, each cell "tested" or "n/a: why"."""
    lines = ["| backbone (name) | " + " | ".join(m.title for m in METHODS.values()) + " |",
             "|---" * (len(METHODS) + 1) + "|"]
    for name, entry in BACKBONES.items():
        cells = [cell(name, method)[1] for method in METHODS]
        lines.append(f"| {entry.title} (`{name}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    print(markdown_table())
    print()
    for form, meaning in FORMS.items():
        print(f"- `{form}`: {meaning}")
    lacks = {lack: None for entry in BACKBONES.values() for lack in entry.missing_forms.values()}
    for lack in lacks:
        print(f"- {lack.summary}: {lack.reason}")


if __name__ == "__main__":
    main()

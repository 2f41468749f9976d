"""DAP paper, step 2, on this machine: speed and behaviour of CAM pseudo-box generation.

On N images of a classification dataset spread over its classes (default: all 160 of the
synthetic val split) with a trained classifier; times from benchmarks/timing.py (variants
interleaved, process CPU time on the CPU, median of the repeats):

(a) the network forward (``ClassActivationMapper``: resizing, backbone at every scale and its
    mirror, CAM) in the default memory format and in channels_last (the mapper's default), with
    the agreement of their boxes, and the box extraction (``boxes_from_cam``) as a share of it;
(b) ``boxes_from_cam`` on the same CAMs against ``plain_loop_boxes_from_cam`` (the procedure as
    one writes it with SciPy labelling and a NumPy loop per component, the peer to beat) and
    ``reference_boxes_from_cam`` (pure-Python flood fill, per-component loops, pure-Python NMS):
    time per image and agreement of the box sets;
(c) the worst case: checkerboard maps, every other pixel its own component at every threshold;
(d) the paper's Table A1 (single thresholds and Multi, NMS IoU 0.8) and Table A2 (Multi, NMS IoU
    0.5 .. 1.0 = no NMS) on our data: boxes per image, mean box size (image pixels) and, when the
    dataset has real boxes, how well the pseudo boxes find those of the labelled class.

Image reading is not timed. Prints markdown tables and writes them with a plot to --output-dir.

    python -m benchmarks.dap_pseudo_boxes [--num-images 160] [--config-file ... --weights ...] \\
        [--repeats 3 --threads 1] [--output-dir output/dap/benchmarks] [pseudo-box options of dap.generate_pseudo_boxes]
"""
import argparse
import collections
import dataclasses
import os
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
from tabulate import tabulate

from scipy import ndimage

from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, pairwise_iou

from benchmarks.timing import describe, interleaved, use_threads
from dap.boxes import boxes_from_cam
from dap.cam import ClassActivationMapper
from dap.pseudo_boxes import LabelledImageReader, add_pseudo_box_arguments, load_classifier, options_from_args
from dap.statistics import localisation_quality, pseudo_box_statistics
from dap.visualize import sample_across_classes
from projects.common.data import check_dataset_available
from projects.common.io import save_figure_atomically

CONFIG_FILE = "configs/dap/synthetic_classifier_cpu.py"
WEIGHTS = "output/dap/synthetic/classifier/model_final.pth"
DATASET = "synthetic_shapes_cls_val"
NMS_IOUS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Paper Table A1 / A2, average pseudo boxes per image on ImageNet-1M (IN-1M DAP R-50 setting)
PAPER_BOXES_PER_IMAGE_BY_THRESHOLD = {"0.2": 1.019, "0.3": 1.046, "0.4": 1.096, "0.5": 1.161, "Multi": 3.211}
PAPER_BOXES_PER_IMAGE_BY_NMS_IOU = {"0.5": 2.047, "0.6": 2.308, "0.7": 2.661, "0.8": 3.211, "0.9": 3.966, "1": 4.321}
SAME_BOX_TOLERANCE = 1e-6  # pixels: boxes closer than this in every coordinate are the same box


# ---------------------------------------------------------------------------------------------
# Other box extractions: the pure-Python reference and the plain SciPy/NumPy loop (the peer)


def reference_boxes_from_cam(
    cam: np.ndarray,
    thresholds: Sequence[float] = (0.2, 0.3, 0.4, 0.5),
    nms_iou: float = 0.8,
    min_area_ratio: float = 0.5,
    *,
    connectivity: int = 4,
    component_area: str = "pixels",
    weighting: str = "cam",
    max_components_per_threshold: int = 0,
) -> np.ndarray:
    """
    The pseudo-box procedure written plainly, to check and time ``dap.boxes.boxes_from_cam``
    (same arguments and conventions: pixel (i, j) covers [j, j + 1) x [i, i + 1), moments of
    unit-square pixels, larger boxes first in NMS). Not for production: it is slow.
    """
    cam = np.asarray(cam, dtype=np.float64)
    low, high = cam.min(), cam.max()
    if not high > low:
        return np.zeros((0, 4))
    normalised = (cam - low) / (high - low)  # Eq. 1
    boxes = []
    for tau in thresholds:
        components = _flood_fill_components(normalised > tau, connectivity)  # Eq. 2
        areas = [_component_area(rows, columns, component_area) for rows, columns in components]
        order = sorted(range(len(components)), key=lambda index: -areas[index])  # stable: ties by label
        kept = [index for index in order if areas[index] >= min_area_ratio * areas[order[0]]]
        if max_components_per_threshold:
            kept = kept[:max_components_per_threshold]
        for index in kept:
            rows, columns = components[index]
            weights = normalised[rows, columns] if weighting == "cam" else np.ones(len(rows))
            boxes.append(_moment_matched_box(weights, columns + 0.5, rows + 0.5))
    if not boxes:
        return np.zeros((0, 4))
    height, width = cam.shape
    limits = (width, height, width, height)
    boxes = [[min(max(value, 0.0), limit) for value, limit in zip(box, limits)] for box in boxes]
    return np.array(_greedy_nms_larger_first(boxes, nms_iou), dtype=np.float64).reshape(-1, 4)


def _flood_fill_components(mask: np.ndarray, connectivity: int) -> List[tuple]:
    """(rows, columns) pixel arrays of the connected components of ``mask``, labelled in raster order."""
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    height, width = mask.shape
    foreground = mask.tolist()
    visited = [[False] * width for _ in range(height)]
    components = []
    for start_row in range(height):
        for start_column in range(width):
            if not foreground[start_row][start_column] or visited[start_row][start_column]:
                continue
            visited[start_row][start_column] = True
            stack, pixels = [(start_row, start_column)], []
            while stack:
                row, column = stack.pop()
                pixels.append((row, column))
                for step_row, step_column in steps:
                    next_row, next_column = row + step_row, column + step_column
                    if (0 <= next_row < height and 0 <= next_column < width
                            and foreground[next_row][next_column] and not visited[next_row][next_column]):
                        visited[next_row][next_column] = True
                        stack.append((next_row, next_column))
            rows, columns = np.array(pixels).T
            components.append((rows, columns))
    return components


def _component_area(rows: np.ndarray, columns: np.ndarray, component_area: str) -> int:
    if component_area == "pixels":
        return len(rows)
    return (rows.max() - rows.min() + 1) * (columns.max() - columns.min() + 1)


def _moment_matched_box(weights: np.ndarray, x_centres: np.ndarray, y_centres: np.ndarray) -> List[float]:
    """Eq. 3-6 over the component's pixels, each pixel adding its own extent's variance (1/12)."""
    total = weights.sum()
    x_mean, y_mean = (weights * x_centres).sum() / total, (weights * y_centres).sum() / total
    x_variance = (weights * (x_centres - x_mean) ** 2).sum() / total + 1.0 / 12.0
    y_variance = (weights * (y_centres - y_mean) ** 2).sum() / total + 1.0 / 12.0
    width, height = np.sqrt(12.0 * x_variance), np.sqrt(12.0 * y_variance)
    return [x_mean - width / 2, y_mean - height / 2, x_mean + width / 2, y_mean + height / 2]


def _greedy_nms_larger_first(boxes: List[List[float]], iou_threshold: float) -> List[List[float]]:
    """Keep boxes by decreasing area unless one kept already overlaps them by more than ``iou_threshold``."""
    ordered = sorted(boxes, key=lambda box: -(box[2] - box[0]) * (box[3] - box[1]))
    if iou_threshold >= 1.0:
        return ordered
    kept = []
    for box in ordered:
        if all(_iou(box, other) <= iou_threshold for other in kept):
            kept.append(box)
    return kept


def _iou(a: List[float], b: List[float]) -> float:
    overlap = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


_STRUCTURES = {4: ndimage.generate_binary_structure(2, 1), 8: ndimage.generate_binary_structure(2, 2)}


def plain_loop_boxes_from_cam(cam, thresholds=(0.2, 0.3, 0.4, 0.5), nms_iou=0.8, min_area_ratio=0.5, *,
                              normalize=True, to_image=None, connectivity=4, component_area="pixels",
                              weighting="cam", max_components_per_threshold=0):
    """``boxes_from_cam`` as one writes it with SciPy and NumPy without tuning it, the peer the
    benchmark times ours against: ``scipy.ndimage.label`` per threshold, a mask and the moments
    per component on its bounding slice, NMS box by box against the kept ones. Same arguments,
    same boxes."""
    cam = np.asarray(cam, dtype=np.float64)
    if normalize:
        low, high = cam.min(), cam.max()
        if not high > low:
            return np.zeros((0, 4))
        cam = (cam - low) / (high - low)
    boxes = []
    for tau in thresholds:
        labels, count = ndimage.label(cam > tau, structure=_STRUCTURES[connectivity])
        slices = ndimage.find_objects(labels)
        if component_area == "pixels":
            areas = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(np.float64)
        else:
            areas = np.array([(s[0].stop - s[0].start) * (s[1].stop - s[1].start) for s in slices], dtype=np.float64)
        order = np.argsort(-areas, kind="stable")
        kept = [index for index in order if areas[index] >= min_area_ratio * areas[order[0]]]
        if max_components_per_threshold:
            kept = kept[:max_components_per_threshold]
        for index in kept:
            rows, columns = slices[index]
            in_component = labels[rows, columns] == index + 1
            weights = cam[rows, columns] * in_component if weighting == "cam" else in_component.astype(np.float64)
            total = weights.sum()
            xs = np.arange(columns.start, columns.stop) + 0.5
            ys = np.arange(rows.start, rows.stop) + 0.5
            column_mass, row_mass = weights.sum(axis=0), weights.sum(axis=1)
            x_mean, y_mean = column_mass @ xs / total, row_mass @ ys / total
            half_width = np.sqrt(12.0 * (column_mass @ (xs - x_mean) ** 2 / total + 1.0 / 12.0)) / 2
            half_height = np.sqrt(12.0 * (row_mass @ (ys - y_mean) ** 2 / total + 1.0 / 12.0)) / 2
            boxes.append([x_mean - half_width, y_mean - half_height, x_mean + half_width, y_mean + half_height])
    if not boxes:
        return np.zeros((0, 4))
    boxes = np.array(boxes)
    height, width = cam.shape
    boxes = to_image(boxes) if to_image is not None else np.clip(boxes, 0.0, [width, height, width, height])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-areas, kind="stable")
    if nms_iou >= 1.0:
        return boxes[order]
    kept = []
    for index in order:
        if kept:
            others = boxes[kept]
            width = np.minimum(others[:, 2], boxes[index, 2]) - np.maximum(others[:, 0], boxes[index, 0])
            height = np.minimum(others[:, 3], boxes[index, 3]) - np.maximum(others[:, 1], boxes[index, 1])
            intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
            if (intersection / (areas[kept] + areas[index] - intersection) > nms_iou).any():
                continue
        kept.append(index)
    return boxes[kept]


def compare_box_sets(ours: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> Dict[str, float]:
    """
    Agreement of two box lists (one (N, 4) array per image): the fraction of images whose sets
    are the same (same number, one-to-one within ``SAME_BOX_TOLERANCE``), the mean IoU of boxes
    matched one-to-one by IoU, the boxes left unmatched and the largest coordinate difference.
    """
    same_images, matched_ious, unmatched, largest_difference = 0, [], 0, 0.0
    for our_boxes, reference_boxes in zip(ours, reference):
        pairs = _match_by_iou(our_boxes, reference_boxes)
        unmatched += len(our_boxes) + len(reference_boxes) - 2 * len(pairs)
        differences = [np.abs(our_boxes[i] - reference_boxes[j]).max() for i, j, _ in pairs]
        matched_ious += [iou for _, _, iou in pairs]
        largest_difference = max([largest_difference] + differences)
        if len(our_boxes) == len(reference_boxes) == len(pairs) and all(d <= SAME_BOX_TOLERANCE for d in differences):
            same_images += 1
    return {
        "same_box_sets": same_images / len(ours) if len(ours) else 1.0,
        "mean_matched_iou": float(np.mean(matched_ious)) if matched_ious else 1.0,
        "unmatched_boxes": unmatched,
        "largest_coordinate_difference": float(largest_difference),
    }


def _match_by_iou(a: np.ndarray, b: np.ndarray) -> List[tuple]:
    """Greedy one-to-one (index in a, index in b, IoU) pairs, highest IoU first, IoU > 0."""
    if len(a) == 0 or len(b) == 0:
        return []
    ious = pairwise_iou(Boxes(torch.as_tensor(a)), Boxes(torch.as_tensor(b))).numpy()
    pairs = []
    while ious.size and ious.max() > 0:
        i, j = np.unravel_index(np.argmax(ious), ious.shape)
        pairs.append((int(i), int(j), float(ious[i, j])))
        ious[i, :], ious[:, j] = -1, -1
    return pairs


# ---------------------------------------------------------------------------------------------
# Measurements


def cam_forwards(model, inputs: List[dict], options, batch_size: int, repeats: int):
    """({layout: CAMs of ``inputs``}, {layout: Timing of one pass over them}): the mapper's
    forward with the backbone's batch in the default layout and in channels_last, interleaved."""
    cams, mappers = {}, {}
    for layout, channels_last in (("default", False), ("channels_last", True)):
        mappers[layout] = ClassActivationMapper(model, scales=options.scales, flip=options.flip,
                                                resolution=options.resolution, cell_origin=options.cell_origin,
                                                channels_last=channels_last)

    def forward(layout):
        def run():
            mapper = mappers[layout]
            cams[layout] = [cam for first in range(0, len(inputs), batch_size)
                            for cam in mapper(inputs[first : first + batch_size])]
        return run

    return cams, interleaved({layout: forward(layout) for layout in mappers}, repeats)


def box_extractions(extractors: Dict[str, Callable], cams, box_arguments: dict, repeats: int):
    """({name: boxes in CAM pixels per image}, {name: Timing of one pass over ``cams``})."""
    boxes = {}

    def extraction(name):
        def run():
            boxes[name] = [extractors[name](cam.cam, **box_arguments) for cam in cams]
        return run

    return boxes, interleaved({name: extraction(name) for name in extractors}, repeats)


def checkerboard(size: int) -> np.ndarray:
    """The worst case of the labelling and the NMS: every other pixel a one-pixel component."""
    return (np.indices((size, size)).sum(axis=0) % 2).astype(np.float64)


def worst_case_rows(sizes: Sequence[int], box_arguments: dict, repeats: int) -> List[list]:
    """Rows (map, components per threshold, boxes, ms) of ``boxes_from_cam`` on checkerboards."""
    cams = {size: checkerboard(size) for size in sizes}
    times = interleaved({size: (lambda cam=cam: boxes_from_cam(cam, **box_arguments)) for size, cam in cams.items()},
                        repeats)
    return [[f"{size}x{size} checkerboard", size * size // 2, len(boxes_from_cam(cams[size], **box_arguments)),
             times[size].ms] for size in sizes]


def sweep_row(cams, dataset_dicts, box_arguments: dict) -> Dict[str, float]:
    """Table A1/A2 column for one setting: box statistics and quality, in image pixels."""
    boxes = [cam.pseudo_boxes(**box_arguments) for cam in cams]
    row = pseudo_box_statistics(boxes)
    row.update(localisation_quality(boxes, dataset_dicts) or {})
    return row


def threshold_sweep(cams, dataset_dicts, options) -> Dict[str, Dict[str, float]]:
    """Paper Table A1: each threshold of ``options`` alone, then all of them ("Multi")."""
    arguments = options.box_arguments()
    settings = {f"{tau:g}": (tau,) for tau in options.thresholds}
    settings["Multi"] = tuple(options.thresholds)
    return {name: sweep_row(cams, dataset_dicts, {**arguments, "thresholds": thresholds})
            for name, thresholds in settings.items()}


def nms_sweep(cams, dataset_dicts, options) -> Dict[str, Dict[str, float]]:
    """Paper Table A2: all thresholds of ``options``, NMS IoU 0.5 .. 1.0 (1.0 = no NMS)."""
    arguments = options.box_arguments()
    return {f"{iou:g}": sweep_row(cams, dataset_dicts, {**arguments, "nms_iou": iou}) for iou in NMS_IOUS}


# ---------------------------------------------------------------------------------------------
# Report


def sweep_table(first_column: str, sweep: Dict[str, Dict[str, float]], paper_boxes_per_image: Dict[str, float]) -> str:
    """The paper's layout: one column per setting, one row per statistic, the paper's row last."""
    names = list(sweep)
    statistics = [("boxes / image", "boxes_per_image", "{:.3f}"), ("mean box width (px)", "mean_box_width", "{:.1f}"),
                  ("mean box height (px)", "mean_box_height", "{:.1f}"), ("mean best IoU", "mean_best_iou", "{:.3f}"),
                  ("recall@0.5 (%)", "recall@0.5", "{:.1f}"), ("precision@0.5 (%)", "precision@0.5", "{:.1f}")]
    rows = [[label] + [format.format(sweep[name][key]) for name in names]
            for label, key, format in statistics if key in sweep[names[0]]]
    rows.append(["paper boxes / image (IN-1M)"] + [f"{paper_boxes_per_image[name]:.3f}" if name in paper_boxes_per_image
                                                   else "-" for name in names])
    # every row has its own decimals: the cells are formatted above and printed as they are
    return tabulate(rows, headers=[first_column] + names, tablefmt="github", disable_numparse=True)


def plot(threshold_rows, nms_rows, path: str, title: str) -> None:
    """Boxes per image (ours and the paper's) and recall/precision against the threshold and the NMS IoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex="col")
    for column, (rows, paper, label) in enumerate((
        (threshold_rows, PAPER_BOXES_PER_IMAGE_BY_THRESHOLD, "CAM threshold tau (NMS IoU 0.8)"),
        (nms_rows, PAPER_BOXES_PER_IMAGE_BY_NMS_IOU, "NMS IoU (all thresholds; 1 = no NMS)"),
    )):
        names = list(rows)
        positions = range(len(names))
        top, bottom = axes[0, column], axes[1, column]
        top.plot(positions, [rows[name]["boxes_per_image"] for name in names], "-o", label="ours")
        top.plot(positions, [paper.get(name, np.nan) for name in names], "--s", label="paper (ImageNet-1M)")
        top.set_ylabel("boxes / image")
        top.legend()
        if "recall@0.5" in rows[names[0]]:
            for key, marker in (("recall@0.5", "-o"), ("precision@0.5", "-^")):
                bottom.plot(positions, [rows[name][key] for name in names], marker, label=key)
            bottom.plot(positions, [100 * rows[name]["mean_best_iou"] for name in names], "-s",
                        label="mean best IoU x 100")
            bottom.set_ylabel("% of real / pseudo boxes")
            bottom.set_ylim(0, 100)
            bottom.legend(loc="lower right")
        bottom.set_xticks(list(positions))
        bottom.set_xticklabels(names)
        bottom.set_xlabel(label)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure_atomically(figure, path)
    plt.close(figure)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=CONFIG_FILE, help="LazyConfig of the classifier")
    parser.add_argument("--weights", default=WEIGHTS, help="classifier checkpoint")
    parser.add_argument("--allow-partial-weights", action="store_true",
                        help="run even if --weights leaves parameters of the classifier unloaded")
    parser.add_argument("--dataset", default=DATASET, help="registered classification dataset")
    parser.add_argument("--num-images", type=int, default=160, help="images, spread over the classes")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of every variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worst-case-sizes", type=int, nargs="*", default=[128, 256],
                        help="sides of the checkerboard maps of table (c)")
    parser.add_argument("--output-dir", default="output/dap/benchmarks", help="where the .md and .png go")
    add_pseudo_box_arguments(parser)
    parser.set_defaults(scales=[128, 256], resolution="image")  # the synthetic 128 px images
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="key=value overrides of the config")
    return parser.parse_args(argv)


def main(argv=None) -> Dict:
    """Run the benchmark, print and write its tables and plot; returns the measurements."""
    args = parse_args(argv)
    if "://" not in args.weights and not os.path.isfile(args.weights):
        raise FileNotFoundError(
            f"classifier weights {args.weights!r} not found: train them with `python train_net.py "
            f"--config-file {args.config_file}` or pass --weights"
        )
    options = options_from_args(args)
    model = load_classifier(args.config_file, args.weights, args.opts, args.allow_partial_weights)
    check_dataset_available(args.dataset)
    all_dicts = DatasetCatalog.get(args.dataset)
    indices = sample_across_classes(all_dicts, min(args.num_images, len(all_dicts)), seed=0)
    dataset_dicts = [all_dicts[index] for index in indices]
    reader = LabelledImageReader(all_dicts, indices, getattr(model, "input_format", "BGR"))
    inputs = [reader[position][1] for position in range(len(reader))]
    count = len(inputs)

    use_threads(args.threads)
    layout_cams, forward_times = cam_forwards(model, inputs, options, args.batch_size, args.repeats)
    cams = layout_cams["channels_last"]
    box_arguments = options.box_arguments()
    boxes, extraction_times = box_extractions(
        {"ours": boxes_from_cam, "plain": plain_loop_boxes_from_cam, "reference": reference_boxes_from_cam},
        cams, box_arguments, args.repeats,
    )
    default_layout_boxes = [boxes_from_cam(cam.cam, **box_arguments) for cam in layout_cams["default"]]
    agreements = {
        "reference": compare_box_sets(boxes["ours"], boxes["reference"]),
        "plain": compare_box_sets(boxes["ours"], boxes["plain"]),
        "layout": compare_box_sets(boxes["ours"], default_layout_boxes),
    }
    worst_cases = worst_case_rows(args.worst_case_sizes, box_arguments, args.repeats)
    thresholds = threshold_sweep(cams, dataset_dicts, options)
    nms = nms_sweep(cams, dataset_dicts, options)

    cam_shapes = collections.Counter(cam.cam.shape for cam in cams).most_common(1)[0][0]
    setting = (f"{count} images of {args.dataset}, CAM scales {'/'.join(map(str, options.scales))}, flip "
               f"{options.flip}, resolution {options.resolution} (CAM {cam_shapes[0]}x{cam_shapes[1]}); "
               f"{describe(args.repeats)}")
    options_text = ", ".join(f"{key} {value}" for key, value in dataclasses.asdict(options).items())
    per_image = {name: 1000 * timing.median / count for name, timing in {**forward_times, **extraction_times}.items()}
    agreement_header = ["ours vs", "images with the same box set", "mean IoU of matched boxes", "unmatched boxes",
                        "largest coordinate difference (CAM px)"]
    text = "\n\n".join([
        f"Setting: {setting}.\nOptions: {options_text}.",
        "(a) CAM forward and box extraction, ms per image (image reading not timed):",
        tabulate([
            ["network forward, default layout", per_image["default"], 1.0],
            ["network forward, channels_last (ClassActivationMapper's default)", per_image["channels_last"],
             per_image["default"] / per_image["channels_last"]],
            ["box extraction (boxes_from_cam)", per_image["ours"], None],
        ], headers=["stage", "ms/image", "speed-up"], tablefmt="github", floatfmt=("", ".2f", ".2f"),
           missingval="-"),
        f"Box extraction / channels_last forward: {100 * per_image['ours'] / per_image['channels_last']:.1f} %.",
        "(b) Box extraction on the same CAMs:",
        tabulate([
            ["boxes_from_cam (one labelling per threshold, moments at once, near-linear NMS)", per_image["ours"], 1.0],
            ["plain loop (SciPy labelling, NumPy per component)", per_image["plain"], per_image["plain"] / per_image["ours"]],
            ["reference (Python flood fill, per-component loops)", per_image["reference"],
             per_image["reference"] / per_image["ours"]],
        ], headers=["implementation", "ms/image", "time / ours"], tablefmt="github", floatfmt=("", ".3f", ".2f")),
        tabulate([[name, f"{100 * agreement['same_box_sets']:.1f}%", agreement["mean_matched_iou"],
                   agreement["unmatched_boxes"], agreement["largest_coordinate_difference"]]
                  for name, agreement in (("reference", agreements["reference"]), ("plain loop", agreements["plain"]),
                                          ("ours on default-layout CAMs", agreements["layout"]))],
                 headers=agreement_header, tablefmt="github", floatfmt=("", "", ".6f", "", ".2e")),
        "(c) Worst case, boxes_from_cam with the options above:",
        tabulate(worst_cases, headers=["map", "components per threshold", "boxes", "ms"], tablefmt="github",
                 floatfmt=("", "", "", ".1f")),
        f"(d) Paper Table A1 on our data (NMS IoU {options.nms_iou:g}):",
        sweep_table("CAM threshold", thresholds, PAPER_BOXES_PER_IMAGE_BY_THRESHOLD),
        "Paper Table A2 on our data (all thresholds):",
        sweep_table("NMS IoU", nms, PAPER_BOXES_PER_IMAGE_BY_NMS_IOU),
    ])
    print(text)
    os.makedirs(args.output_dir, exist_ok=True)
    markdown_file = os.path.join(args.output_dir, "dap_pseudo_boxes.md")
    with open(markdown_file, "w") as f:
        f.write(text + "\n")
    plot(thresholds, nms, os.path.join(args.output_dir, "dap_pseudo_boxes.png"),
         f"DAP pseudo boxes, paper Tables A1/A2 on {count} images of {args.dataset}")
    return {
        "images": count,
        "ms_per_image": per_image,
        "agreement": agreements["reference"],
        "plain_agreement": agreements["plain"],
        "layout_agreement": agreements["layout"],
        "worst_cases": worst_cases,
        "thresholds": thresholds,
        "nms": nms,
    }


if __name__ == "__main__":
    main()

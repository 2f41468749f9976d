"""
Object proposals for ResNet-WS (WSDDN / OICR train and test on precomputed boxes), written as
detectron2 proposal files: a pickle with ``"ids"`` (the dataset dicts' ``image_id``), ``"boxes"``
(one (N, 4) float32 XYXY_ABS array per image), ``"objectness_logits"`` (one (N,) float32 array)
and ``"bbox_mode"``. ``detectron2.data.get_detection_dataset_dicts(names, proposal_files=[...])``
reads it with ``load_proposals_into_dataset`` (images matched by ``str(image_id)``; each image's
boxes sorted by decreasing objectness) and ``DatasetMapper(precomputed_proposal_topk=K)`` keeps
the first K. One file may serve several datasets: ids of other datasets are ignored on loading.

One module per job: ``search`` (Selective Search boxes of one image, and
``SelectiveSearchProposals``, the detector's proposal source for images without a file),
``generate`` (over datasets, parallel, sharded, resumable), ``mat_files`` (published .mat
proposals), ``files`` (the pickle, its images and quality), ``pictures`` and ``cli``
(``python -m projects.resnet_ws.proposals``).
"""

from .cli import main
from .files import format_statistics, load_image_records, proposal_statistics, write_proposal_file
from .generate import ProposalOptions, generate_proposals
from .mat_files import convert_mcg_mats, convert_selective_search_mat, matlab_boxes_to_xyxy
from .pictures import draw_proposals, save_proposal_pictures
from .search import SELECTIVE_SEARCH_MODES, SelectiveSearchProposals, rank_scores, selective_search

__all__ = [
    "SELECTIVE_SEARCH_MODES",
    "ProposalOptions",
    "SelectiveSearchProposals",
    "convert_mcg_mats",
    "convert_selective_search_mat",
    "draw_proposals",
    "format_statistics",
    "generate_proposals",
    "load_image_records",
    "main",
    "matlab_boxes_to_xyxy",
    "proposal_statistics",
    "rank_scores",
    "save_proposal_pictures",
    "selective_search",
    "write_proposal_file",
]

"""MSAD high-resolution student (supplement Table 1 "S / H"): coco_fcos_R50_student_1x.py at the
teacher's own resolution (800 px, no level shift), distilled from the fusion teacher's features."""
from .coco_fcos_R50_student_1x import dataloader, lr_multiplier, model, optimizer, train

model.input_scale = 1.0
dataloader.test.mapper.augmentations[0].update(short_edge_length=800, max_size=1333)
train.output_dir = "output/msad/coco_fcos_R50_student_highres_1x"

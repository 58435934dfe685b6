# Semantic FPN + VAN on ADE20K 512x512, 40k iterations, 8 GPUs x 4 images.
_base_ = [
    './models/fpn_van_seg.py',
    './datasets/ade20k_512.py',
    './schedules/seg_fpn_adamw_40k.py',
    './seg_runtime.py',
]
train_dataloader = dict(batch_size=4)

# UperNet + VAN on ADE20K 512x512, 160k iterations, 8 GPUs x 2 images.
_base_ = [
    './models/upernet_van.py',
    './datasets/ade20k_512.py',
    './schedules/seg_upernet_adamw_160k.py',
    './seg_runtime.py',
]
train_dataloader = dict(batch_size=2)

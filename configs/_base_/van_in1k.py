# VAN ImageNet-1K classification from scratch, 8 GPUs x 128 images, 300
# epochs. No EMA: the official VAN training script (timm's train.py, run
# without --model-ema) did not use it.
_base_ = [
    './models/van_cls.py',
    './datasets/imagenet_bs128_randaug.py',
    './schedules/cls_adamw_cosine_300e.py',
    './cls_runtime.py',
]

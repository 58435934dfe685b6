# Cascade Mask R-CNN (4conv1fc + GIoU), 3x (36 epochs) multi-scale + crop,
# AdamW lr 1e-4, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LKA-B3 backbone (k=21), ImageNet-1K init.
_base_ = './cascade_maskrcnn_van_lka_b1.py'

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-large_8xb128_in1k_20220501-f212ba21.pth'  # noqa: E501
model = dict(backbone=dict(arch='b3', init_cfg=dict(checkpoint=checkpoint)))

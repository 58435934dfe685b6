# Mask R-CNN, 1x (12 epochs), AdamW lr 1e-4, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LKA-B2 backbone (k=21), ImageNet-1K init.
_base_ = './maskrcnn_van_lka_b1.py'

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-base_8xb128_in1k_20220501-6a4cc31b.pth'  # noqa: E501
model = dict(backbone=dict(arch='b2', init_cfg=dict(checkpoint=checkpoint)))

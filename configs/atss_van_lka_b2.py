# ATSS + FPN, 3x (36 epochs, multi-scale) on COCO
# with a VAN-LKA-B2 backbone (k=21).
_base_ = './_base_/atss_van_coco_3x.py'
# ImageNet-1K weights converted by OpenMMLab (mmpretrain key names).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-base_8xb128_in1k_20220501-6a4cc31b.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b2',
        kernel_size=21,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    neck=dict(in_channels=[64, 128, 320, 512]),
)

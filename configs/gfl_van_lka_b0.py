# GFL + FPN, 3x (36 epochs, multi-scale) on COCO
# with a VAN-LKA-B0 backbone (k=21).
_base_ = './_base_/gfl_van_coco_3x.py'
# ImageNet-1K weights converted by OpenMMLab (mmpretrain key names).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-tiny_8xb128_in1k_20220501-385941af.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        kernel_size=21,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    neck=dict(in_channels=[32, 64, 160, 256]),
)

# Semantic FPN on ADE20K, 512x512, 40k iterations,
# with a VAN-LKA-B0 backbone (k=21, its default).
_base_ = './_base_/fpn_van_ade20k_40k.py'
# ImageNet-1K weights converted by OpenMMLab (mmpretrain key names).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-tiny_8xb128_in1k_20220501-385941af.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    neck=dict(in_channels=[32, 64, 160, 256]),
)

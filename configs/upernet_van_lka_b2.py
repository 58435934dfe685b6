# UperNet on ADE20K, 512x512, 160k iterations,
# with a VAN-LKA-B2 backbone (k=21, its default).
_base_ = './_base_/upernet_van_ade20k_160k.py'
# ImageNet-1K weights converted by OpenMMLab (mmpretrain key names).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-base_8xb128_in1k_20220501-6a4cc31b.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b2',
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320),
)

# UperNet on ADE20K, 512x512, 160k iterations,
# with a VAN-LKA-B6 backbone (k=21, its default), ImageNet-22K initialised.
# VAN-Seg's configs/upernet/22k_pretrained/
# upernet_van_b6_512x512_160k_ade20k_22k.py (mmseg projects/van
# van-b6-in22kpre_upernet_4xb2-160k_ade20k-512x512.py): drop path 0.5,
# 2 images per GPU (8 GPUs: batch 16, the base's), AdamW lr 6e-5.
_base_ = './_base_/upernet_van_ade20k_160k.py'
# ImageNet-22K VAN-B6 backbone converted by OpenMMLab (official key names),
# the init_cfg of that mmseg projects/van config.
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/van_3rdparty/van-b6-in22k_3rdparty_20230522-5e5172a3.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b6',
        drop_path_rate=0.5,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384),
)

# UperNet on ADE20K, 512x512, 160k iterations,
# with a VAN-LKA-B4 backbone (k=21, its default), ImageNet-22K initialised.
# VAN-Seg's configs/upernet/22k_pretrained/
# upernet_van_b4_512x512_160k_ade20k_22k.py (mmseg projects/van
# van-b4-in22kpre_upernet_4xb4-160k_ade20k-512x512.py): drop path 0.4,
# 4 images per GPU (8 GPUs: batch 32), AdamW lr 6e-5 as for B0-B3.
_base_ = './_base_/upernet_van_ade20k_160k.py'
# ImageNet-22K VAN-B4 backbone converted by OpenMMLab (official key names),
# the init_cfg of that mmseg projects/van config.
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/van_3rdparty/van-b4-in22k_3rdparty_20230522-5e31cafb.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b4',
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320),
)
train_dataloader = dict(batch_size=4)
# The lr above is for a total batch of 32; --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=32)

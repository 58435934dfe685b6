# Semantic FPN on ADE20K, 512x512, 40k iterations,
# with a VAN-LSKA-B0 backbone (k=23).
_base_ = './_base_/fpn_van_ade20k_40k.py'
# The LSKA authors' ImageNet-1K weights, downloaded by hand and converted
# with tools/model_converters/van_convert.py (no public URL).
checkpoint = 'data/pretrained/van_lska_b0_k23.pth'
model = dict(
    backbone=dict(
        type='VAN_LSKA',
        arch='b0',
        kernel_size=23,
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    neck=dict(in_channels=[32, 64, 160, 256]),
)

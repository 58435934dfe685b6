# GFL + FPN, 3x (36 epochs, multi-scale) on COCO
# with a VAN-LSKA-B1 backbone (k=23).
_base_ = './_base_/gfl_van_coco_3x.py'
# The LSKA authors' ImageNet-1K weights, downloaded by hand and converted
# with tools/model_converters/van_convert.py (no public URL).
checkpoint = 'data/pretrained/van_lska_b1_k23.pth'
model = dict(
    backbone=dict(
        type='VAN_LSKA',
        arch='b1',
        kernel_size=23,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    neck=dict(in_channels=[64, 128, 320, 512]),
)

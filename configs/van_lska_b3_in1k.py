# VAN-LSKA-B3 (k=23) on ImageNet-1K from scratch, 300 epochs.
_base_ = './_base_/van_in1k.py'
model = dict(
    backbone=dict(
        type='VAN_LSKA',
        arch='b3',
        # 23 as in the papers' downstream models; the authors also trained
        # 7, 11, 35, 41 and 53: --cfg-options model.backbone.kernel_size=35
        kernel_size=23,
        drop_path_rate=0.2,  # VAN paper: 0.2 for b3
    ),
    head=dict(in_channels=512),
)

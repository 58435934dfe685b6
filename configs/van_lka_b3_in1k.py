# VAN-LKA-B3 (k=21, its default) on ImageNet-1K from scratch, 300 epochs.
_base_ = './_base_/van_in1k.py'
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b3',
        drop_path_rate=0.2,  # VAN paper: 0.2 for b3
    ),
    head=dict(in_channels=512),
)

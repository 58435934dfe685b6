# VAN-LKA-B0 (k=21, its default) on ImageNet-1K from scratch, 300 epochs.
_base_ = './_base_/van_in1k.py'
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        drop_path_rate=0.1,
    ),
    head=dict(in_channels=256),
)

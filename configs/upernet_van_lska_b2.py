# UperNet on ADE20K, 512x512, 160k iterations,
# with a VAN-LSKA-B2 backbone (k=23).
_base_ = './_base_/upernet_van_ade20k_160k.py'
# The LSKA authors' ImageNet-1K weights, downloaded by hand and converted
# with tools/model_converters/van_convert.py (no public URL).
checkpoint = 'data/pretrained/van_lska_b2_k23.pth'
model = dict(
    backbone=dict(
        type='VAN_LSKA',
        arch='b2',
        kernel_size=23,
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint=checkpoint),
    ),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320),
)

# Semantic FPN on a VAN backbone (mmseg projects/van's van_fpn.py recipe).
# Leaf configs set backbone type/arch/drop_path_rate/init_cfg and the
# neck's in_channels (b0: 32, 64, 160, 256; b1-b3: 64, 128, 320, 512).
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),
)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        drop_rate=0.0,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        stage_norm_cfg=dict(type='LN', eps=1e-5),
    ),
    neck=dict(
        type='FPN',
        in_channels=[32, 64, 160, 256],
        out_channels=256,
        num_outs=4,
    ),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0
        ),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
)

# Quick start: VAN-LSKA-B0 Semantic FPN trained from scratch on the synthetic
# shapes dataset (tools/misc/make_synthetic_data.py), small enough for a CPU.
# Data: data/shapes/ade/{images,annotations}/{training,validation}.
# Labels: 0 = background, 1-4 = circle, triangle, square, star (kept as is:
# reduce_zero_label=False, background is a class of its own).
_base_ = ['../fpn_van_lska_b0.py']
# ShapesSegDataset: mmseg's tools (confusion_matrix) read the class names
# from the dataset type, which BaseSegDataset does not have.
custom_imports = dict(
    imports=['projects.van_lska', 'projects.van_lska.datasets.shapes_seg'],
    allow_failed_imports=False,
)

data_root = 'data/shapes/ade'
metainfo = dict(
    classes=('background', 'circle', 'triangle', 'square', 'star'),
    palette=[
        (0, 0, 0),
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
    ],
)
crop_size = (128, 128)  # (h, w) of the generated images
max_iters = 2000
val_interval = max_iters
norm_cfg = dict(type='BN', requires_grad=True)

# 64-channel FPN and head (the ADE20K recipe has 256): at 128x128 they,
# not the backbone, cost most of a step (0.66 s of CPU at one thread with
# 128 channels, 0.46 s with 64 and the fused backbone; val mIoU after this
# schedule 59.2 % and 58.1 % at one thread, 56.75 % in the default run with
# two threads, README).
channels = 64
model = dict(
    data_preprocessor=dict(size=crop_size),
    # No ImageNet weights (no download): train from scratch with plain BN.
    # fused=True: the same network and numerics with fewer, faster ops for
    # training on CPU (projects/van_lska/models/fused.py).
    backbone=dict(
        init_cfg=None, drop_path_rate=0.0, norm_cfg=norm_cfg, fused=True
    ),
    neck=dict(out_channels=channels),
    decode_head=dict(
        in_channels=[channels] * 4,
        channels=channels,
        num_classes=len(metainfo['classes']),
        norm_cfg=norm_cfg,
    ),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True,
    ),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
# --tta: the ADE20K configs' multi-scale (0.5-1.75 x the test scale) + flip
# test at this data set's 128x128 scale.
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(crop_size[1] * r), int(crop_size[0] * r)),
                    keep_ratio=True,
                )
                for r in [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
            ],
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=False)],
            [dict(type='PackSegInputs')],
        ],
    ),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='ShapesSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'
        ),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='ShapesSegDataset',
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=False,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation',
        ),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader

# Iteration-based CPU schedule: AdamW with a higher lr than the pretrained
# recipe (training from scratch), linear warmup, then poly decay.
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
optim_wrapper = dict(
    optimizer=dict(lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(_delete_=True, max_norm=10.0, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=1e-6,
        by_epoch=False,
        begin=200,
        end=max_iters,
    ),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
env_cfg = dict(cudnn_benchmark=False)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
)

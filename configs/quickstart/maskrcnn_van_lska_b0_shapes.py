# Quick start: VAN-LSKA-B0 Mask R-CNN trained from scratch on the synthetic
# shapes dataset (tools/misc/make_synthetic_data.py), small enough for a CPU.
# Data: data/shapes/coco/{train,val}/*.jpg + annotations/instances_*.json.
import copy

_base_ = ['../maskrcnn_van_lska_b0.py']

data_root = 'data/shapes/coco/'
classes = ('circle', 'triangle', 'square', 'star')
metainfo = dict(
    classes=classes,
    palette=[(230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25)],
)
img_scale = (128, 128)  # (w, h) of the generated images
max_iters = 1500
val_interval = max_iters

# A lighter head than the COCO recipe (64-channel FPN, RPN and mask convs,
# a small conv box head, fewer RoIs): at 128x128 the FPN, RPN and mask head,
# not the backbone, cost most of a step. With 128 channels a step took
# 1.34 s of CPU at one thread, with 64 and the fused backbone 0.80 s; val
# bbox mAP after this schedule (seed 0): 0.555 with 128 channels, 0.506
# with 64 in one process and 0.583 with 64 in two (the quick start's CPU
# default: two processes of batch 4, README).
neck_channels = 64
model = dict(
    # No ImageNet weights (no download): train from scratch with plain BN.
    # fused=True: the same network and numerics with fewer, faster ops for
    # training on CPU (projects/van_lska/models/fused.py).
    backbone=dict(
        init_cfg=None,
        drop_path_rate=0.0,
        norm_cfg=dict(type='BN', requires_grad=True),
        fused=True,
    ),
    neck=dict(out_channels=neck_channels),
    # Objects are 16-60 px: smaller anchors, two per octave (16, 23, 32,
    # 45, 64, ... px over P2-P6), so that every square object has an anchor
    # at IoU >= 1/sqrt(2) > 0.7 (the RPN's positive threshold). With one per
    # octave (16, 32, 64) a 45 px square matches none and gets only its
    # single best anchor as a low-quality positive.
    rpn_head=dict(
        in_channels=neck_channels,
        feat_channels=neck_channels,
        anchor_generator=dict(scales=[4, 4 * 2**0.5]),
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(
            out_channels=neck_channels, roi_layer=dict(sampling_ratio=1)
        ),
        # The classes differ only by outline, and the RoI classifier is what
        # limits a detector trained from scratch here: two 3x3 convs with
        # BN before one FC tell the shapes apart far sooner than the COCO
        # recipe's two FCs on the flattened 7x7 features (val bbox mAP 0.555
        # against 0.373 after this schedule, at the same step time).
        bbox_head=dict(
            type='ConvFCBBoxHead',
            num_shared_convs=2,
            num_shared_fcs=1,
            conv_out_channels=64,
            norm_cfg=dict(type='BN', requires_grad=True),
            in_channels=neck_channels,
            fc_out_channels=512,
            num_classes=len(classes),
        ),
        mask_roi_extractor=dict(
            out_channels=neck_channels, roi_layer=dict(sampling_ratio=1)
        ),
        mask_head=dict(
            in_channels=neck_channels,
            conv_out_channels=neck_channels,
            num_classes=len(classes),
        ),
    ),
    # Fewer proposals and RoI samples (at most 6 objects per image) and one
    # bilinear sample per RoI bin: RoIAlign's CPU backward is the costliest
    # op of a step otherwise (512 RoIs x 4 samples: ~0.7 s of ~2.5 s).
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=32)),
    ),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=20),
    ),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=(
            'img_id',
            'img_path',
            'ori_shape',
            'img_shape',
            'scale_factor',
        ),
    ),
]
# --tta: the COCO configs' views (configs/_base_/coco_tta.py) at this data
# set's scale: 1, 0.5 and 1.5 times the test scale, each plain and flipped.
tta_pipeline = copy.deepcopy(_base_.tta_pipeline)
tta_pipeline[1].transforms[0] = [
    dict(
        type='Resize',
        scale=(int(img_scale[0] * r), int(img_scale[1] * r)),
        keep_ratio=True,
    )
    for r in (1, 0.5, 1.5)
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False,
)
test_evaluator = val_evaluator

# Iteration-based CPU schedule: AdamW with a higher lr than the pretrained
# recipe (training from scratch), linear warmup, cosine decay.
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval,
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05
    ),
    clip_grad=dict(max_norm=10.0, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.01,
        by_epoch=False,
        begin=200,
        end=max_iters,
    ),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1,
    ),
)
log_processor = dict(by_epoch=False, window_size=20)

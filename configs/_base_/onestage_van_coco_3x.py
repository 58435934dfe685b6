# A one-stage detector + FPN with a VAN backbone on COCO, 3x (36 epochs,
# batch 16 = 8 GPUs x 2) with multi-scale training: the recipe of the ATSS
# and GFL rows of the VAN paper's 3x detector table, which compare with
# PVTv2-b2's (whai362/PVT detection/configs/{atss,gfl}_pvt_v2_b2_fpn_3x_
# mstrain_fp16.py): mmdet's ATSS R-50 1x (ATSS head (GIoU loss,
# centerness), FPN from stride 8 with two extra convs on its output) with
# the changes below. mmdet's GFL R-50 1x is the same detector with another
# head (same FPN, anchors, ATSS assigner and test settings):
# atss_van_coco_3x.py keeps this head, gfl_van_coco_3x.py states its own.
# Leaf configs state the attention, arch, kernel size, ImageNet checkpoint
# and the FPN input channels.
_base_ = [
    'mmdet::atss/atss_r50_fpn_1x_coco.py',
    './coco_tta.py',  # --tta: 3 scales x flip, boxes merged by NMS
    './checkpoint_check.py',  # custom_hooks: the loaded checkpoint
]
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
model = dict(
    # VAN paper (detection) / VAN-Det configs: the four stages at strides
    # 4-32 are computed (the FPN starts at stride 8), stochastic depth 0.1;
    # LayerNorm eps 1e-5 after each stage as in the dense-prediction
    # backbones of VAN-Seg/VAN-Det.
    backbone=dict(
        _delete_=True,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        stage_norm_cfg=dict(type='LN', eps=1e-5),
        init_cfg=dict(type='Pretrained'),
    ),
)
# 3x multi-scale training of PVTv2 / Swin (DETR's augmentation, as the
# Cascade Mask R-CNN 3x base): flip, then either a resize to a short side of
# 480-800 or a resize to 400-600, a random crop and a resize to 480-800.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(s, 1333) for s in range(480, 801, 32)],
                    keep_ratio=True,
                )
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(400, 1333), (500, 1333), (600, 1333)],
                    keep_ratio=True,
                ),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True,
                ),
                dict(
                    type='RandomChoiceResize',
                    scales=[(s, 1333) for s in range(480, 801, 32)],
                    keep_ratio=True,
                ),
            ],
        ],
    ),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# 36 epochs, lr x0.1 after epochs 27 and 33 (mmdet: 12 epochs, steps 8 and
# 11); the 500-iteration linear warmup is mmdet's.
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500
    ),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1,
    ),
]
# VAN paper (detection): AdamW lr 1e-4, weight decay 0.05 instead of SGD.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05
    ),
)

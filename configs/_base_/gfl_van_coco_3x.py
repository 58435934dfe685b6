# GFL + FPN with a VAN backbone on COCO, 3x (36 epochs, batch 16 = 8 GPUs
# x 2) with multi-scale training: the GFL row of the VAN paper's 3x
# detector table, which compares with PVTv2-b2's GFL. The shared one-stage
# 3x base with mmdet's GFL R-50 1x head (mmdet gfl/gfl_r50_fpn_1x_coco.py:
# quality focal loss, distribution focal loss, GIoU loss) in place of the
# ATSS head; the rest of mmdet's GFL (FPN, anchors, ATSS assigner, test
# settings) equals mmdet's ATSS.
_base_ = './onestage_van_coco_3x.py'
model = dict(
    type='GFL',
    bbox_head=dict(
        _delete_=True,
        type='GFLHead',
        num_classes=80,
        in_channels=256,
        stacked_convs=4,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=8,
            scales_per_octave=1,
            strides=[8, 16, 32, 64, 128],
        ),
        loss_cls=dict(
            type='QualityFocalLoss',
            use_sigmoid=True,
            beta=2.0,
            loss_weight=1.0,
        ),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=16,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
    ),
)

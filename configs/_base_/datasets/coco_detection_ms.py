# COCO detection with the multi-scale training of mmdet's Sparse R-CNN 3x
# recipe (sparse-rcnn_r50_fpn_ms-480-800-3x_coco): short side 480-800.
_base_ = './coco_detection.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[
            (480, 1333),
            (512, 1333),
            (544, 1333),
            (576, 1333),
            (608, 1333),
            (640, 1333),
            (672, 1333),
            (704, 1333),
            (736, 1333),
            (768, 1333),
            (800, 1333),
        ],
        keep_ratio=True,
    ),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

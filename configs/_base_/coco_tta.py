# Test-time augmentation of the COCO configs (tools/test.py --tta, mim test
# mmdet --tta): mmdet's RetinaNet TTA (configs/retinanet/retinanet_tta.py):
# three scales (the test scale 1333x800 and half and 1.5 times it), each
# plain and flipped; the six views' boxes are merged by class-aware NMS
# (IoU 0.5), at most 100 per image. Mask R-CNN and Cascade Mask R-CNN set
# tta_model to InstanceSegTTAModel (projects/van_lska/models/det_tta.py),
# which merges the boxes the same way and votes the masks.
tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100),
)
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale=s, keep_ratio=True)
                for s in [(1333, 800), (666, 400), (2000, 1200)]
            ],
            [
                dict(type='RandomFlip', prob=1.0),
                dict(type='RandomFlip', prob=0.0),
            ],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [
                dict(
                    type='PackDetInputs',
                    meta_keys=(
                        'img_id',
                        'img_path',
                        'ori_shape',
                        'img_shape',
                        'scale_factor',
                        'flip',
                        'flip_direction',
                    ),
                )
            ],
        ],
    ),
]

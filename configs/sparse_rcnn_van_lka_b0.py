# Sparse R-CNN (100 proposals), 3x (36 epochs) multi-scale 480-800,
# AdamW lr 2.5e-5, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LKA-B0 backbone (k=21), ImageNet-1K init.
_base_ = [
    './_base_/models/sparse_rcnn_van_fpn.py',
    './_base_/datasets/coco_detection_ms.py',
    './_base_/schedules/det_schedule_sparse_rcnn_3x_adamw.py',
    './_base_/det_runtime.py',
]

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/van/van-tiny_8xb128_in1k_20220501-385941af.pth'  # noqa: E501
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        kernel_size=21,
        init_cfg=dict(checkpoint=checkpoint),
    )
)

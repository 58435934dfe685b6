# RetinaNet, 1x (12 epochs), AdamW lr 1e-4, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LKA-B0 backbone (k=21), ImageNet-1K init.
_base_ = [
    './_base_/models/retinanet_van_fpn.py',
    './_base_/datasets/coco_detection.py',
    './_base_/schedules/det_schedule_1x_adamw.py',
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

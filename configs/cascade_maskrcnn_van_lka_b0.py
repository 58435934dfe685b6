# Cascade Mask R-CNN (4conv1fc + GIoU), 3x (36 epochs) multi-scale + crop,
# AdamW lr 1e-4, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LKA-B0 backbone (k=21), ImageNet-1K init.
_base_ = [
    './_base_/models/cascade_mask_rcnn_van_fpn_4conv1fc_giou.py',
    './_base_/datasets/coco_instance_ms_crop.py',
    './_base_/schedules/det_schedule_3x_adamw.py',
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

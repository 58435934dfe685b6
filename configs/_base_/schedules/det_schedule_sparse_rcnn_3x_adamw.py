# Sparse R-CNN 3x as mmdet's sparse-rcnn_r50_fpn_ms-480-800-3x_coco:
# 36 epochs, AdamW lr 2.5e-5, wd 1e-4, grad clip 1.0, linear warmup
# (500 iters), lr x0.1 after epochs 27 and 33; batch 16 = 8 GPUs x 2 images.
_base_ = './det_schedule_3x_adamw.py'

max_epochs = 36

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
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=0.000025, weight_decay=0.0001
    ),
    clip_grad=dict(max_norm=1, norm_type=2),
)

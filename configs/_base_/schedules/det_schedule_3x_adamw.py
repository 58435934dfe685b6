# COCO 3x (36 epochs) of the Swin / ConvNeXt detection recipes: AdamW lr 1e-4,
# wd 0.05, linear warmup (1000 iters), lr x0.1 after epochs 27 and 33;
# batch 16 = 8 GPUs x 2 images. Use with a multi-scale dataset base.
_base_ = './det_schedule_1x_adamw.py'

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000
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

# COCO 1x (12 epochs): AdamW lr 1e-4, wd 0.05, linear warmup (500 iters),
# lr x0.1 after epochs 8 and 11; batch 16 = 8 GPUs x 2 images.
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500
    ),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1,
    ),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05
    ),
)

# `tools/train.py --auto-scale-lr` scales lr by (GPUs x batch) / 16.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# UperNet recipe of the VAN/LSKA papers (the Swin one): 160k iterations at
# batch 16 (8 GPUs x 2), AdamW lr 6e-5, wd 0.01 with no decay on norm
# layers, linear warmup over 1500 iterations from 1e-6 x lr, then poly decay
# (power 1.0) to 0.
max_iters = 160000
interval = 16000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01
    ),
    clip_grad=None,
    # every BN/LN (backbone 'norm1'/'norm2'/'norm{i}', patch_embed '.norm')
    # matches 'norm'; the decode heads use ConvModule's 'bn'.
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500
    ),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        begin=1500,
        end=max_iters,
        by_epoch=False,
    ),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=interval
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=interval),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)
auto_scale_lr = dict(enable=False, base_batch_size=16)

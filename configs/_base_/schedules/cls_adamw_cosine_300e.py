# ImageNet recipe of the VAN / LSKA papers (timm defaults of their train.py):
# batch 1024 (8 GPUs x 128), AdamW lr 1e-3 (5e-4 x 1024 / 512), wd 0.05 on
# weights only (biases, norms and layer scales are 1-D: no decay), 5 linear
# warmup epochs from 1e-6, cosine to 1e-6, 300 epochs, no gradient clipping.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=5e-4 * 1024 / 512,
        weight_decay=0.05,
        eps=1e-8,
        betas=(0.9, 0.999),
    ),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0
    ),
)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=5,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=5,
        end=300,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# lr above is for a total batch of 1024; --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=1024)

# VAN on ImageNet-1K from scratch, 224x224, 300 epochs at batch 1024
# (8 GPUs x 128): mmpretrain's own VAN config (RandAugment, Mixup/CutMix,
# label smoothing, random erasing, mean = std = 0.5) with the changes below,
# which follow the official VAN training script (timm's train.py; the LSKA
# paper trains the same way). No EMA: that script ran without
# --model-ema. Leaf configs state the attention, arch, kernel size,
# stochastic depth and the head's input channels.
_base_ = 'mmpretrain::van/van-tiny_8xb128_in1k.py'
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
model = dict(
    # Stage-4 features only; LayerNorm eps 1e-6 after each stage (VAN-Cls).
    backbone=dict(
        _delete_=True,
        out_indices=(3,),
        norm_cfg=dict(type='BN'),
        stage_norm_cfg=dict(type='LN', eps=1e-6),
    ),
    # timm's head init (trunc normal, std 0.02) on the classifier only; the
    # backbone initialises itself as VAN-Cls does.
    head=dict(
        init_cfg=dict(
            _delete_=True,
            type='TruncNormal',
            layer='Linear',
            std=0.02,
            bias=0.0,
        )
    ),
    # (so no model-wide Linear/LayerNorm init_cfg as in mmpretrain's VAN)
    init_cfg=None,
)
# timm turns colour jitter off when auto-augment is on: mmpretrain's VAN
# pipeline without its ColorJitter (fill values: the base's mean/std, 0.5).
bgr_mean = [127.5, 127.5, 127.5]
bgr_std = [127.5, 127.5, 127.5]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic',
    ),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in bgr_mean], interpolation='bicubic'
        ),
    ),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std,
    ),
    dict(type='PackInputs'),
]
# 8 loader workers and 128 images per GPU for validation as well.
train_dataloader = dict(
    num_workers=8,
    persistent_workers=True,
    dataset=dict(pipeline=train_pipeline),
)
val_dataloader = dict(batch_size=128, num_workers=8, persistent_workers=True)
test_dataloader = val_dataloader
# AdamW lr 1e-3 (5e-4 x 1024 / 512), weight decay 0.05 on weights only
# (biases, norms and layer scales are 1-D: no decay), no gradient clipping
# (mmpretrain: max norm 5), 5 linear warmup epochs from 1e-6, cosine to 1e-6
# (mmpretrain: 20 warmup epochs, cosine to 1e-5).
optim_wrapper = dict(
    _delete_=True,
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
# Keep the last three epochs' checkpoints.
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))

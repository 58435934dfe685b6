# UperNet with a VAN backbone on ADE20K, 512x512 crops, 160k iterations at
# batch 16 (8 GPUs x 2): mmseg's UperNet R-50 ADE20K 160k with the changes
# below. Leaf configs state the attention, arch, kernel size, ImageNet
# checkpoint, stochastic depth and the heads' input channels.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    # ADE20K data, --tta, runtime and test pipeline of the VAN segmentors
    './van_ade20k.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
norm_cfg = dict(type='SyncBN', requires_grad=True)
# Pad every training batch to the crop size (mmseg's ADE20K configs) and
# test images to a multiple of 32 (mmseg projects/van van_upernet.py).
data_preprocessor = dict(size=_base_.crop_size, test_cfg=dict(size_divisor=32))
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    # VAN-Seg (mmseg projects/van van_upernet.py): the four stages feed the
    # UPerHead, stage 3 the auxiliary FCNHead; LayerNorm eps 1e-5 after
    # each stage.
    backbone=dict(
        _delete_=True,
        drop_rate=0.0,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        stage_norm_cfg=dict(type='LN', eps=1e-5),
        init_cfg=dict(type='Pretrained'),
    ),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150),
)
# VAN paper / VAN-Seg UperNet recipe (Swin's): batch 2 per GPU.
train_dataloader = dict(batch_size=2)
# AdamW lr 6e-5, weight decay 0.01 with no decay on norm layers (every
# BN/LN of the backbone matches 'norm'; the heads' ConvModules name theirs
# 'bn'), linear warmup over 1500 iterations from 1e-6 x lr, then poly decay
# (power 1.0) to 0; mmseg: SGD, no warmup, power 0.9 to 1e-4.
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=6e-5,
        betas=(0.9, 0.999),
        weight_decay=0.01,
    ),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
)
# mmseg's schedule also names its SGD optimizer at top level (unused: the
# runner reads optim_wrapper); cleared so that no SGD settings show.
optimizer = None
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500
    ),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        begin=1500,
        end=160000,
        by_epoch=False,
    ),
]
# The lr above is for a total batch of 16; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)

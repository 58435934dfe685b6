# Semantic FPN with a VAN backbone on ADE20K, 512x512 crops, 40k iterations
# at batch 32 (8 GPUs x 4): mmseg's FPN R-50 ADE20K 40k with the changes
# below. Leaf configs state the attention, arch, kernel size, ImageNet
# checkpoint, stochastic depth and the FPN input channels.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    # ADE20K data, --tta, runtime and test pipeline of the VAN segmentors
    './van_ade20k.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
norm_cfg = dict(type='SyncBN', requires_grad=True)
# Pad every training batch to the crop size (mmseg's ADE20K configs).
data_preprocessor = dict(size=_base_.crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    # VAN-Seg (mmseg projects/van van_fpn.py): the four stages feed the FPN;
    # LayerNorm eps 1e-5 after each stage.
    backbone=dict(
        _delete_=True,
        drop_rate=0.0,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        stage_norm_cfg=dict(type='LN', eps=1e-5),
        init_cfg=dict(type='Pretrained'),
    ),
    decode_head=dict(num_classes=150),
)
# VAN paper / VAN-Seg FPN recipe: AdamW lr 2e-4, weight decay 1e-4 (not
# SGD), poly decay (power 0.9) down to 0 (not 1e-4).
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=1e-4,
    ),
)
# mmseg's schedule also names its SGD optimizer at top level (unused: the
# runner reads optim_wrapper); cleared so that no SGD settings show.
optimizer = None
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        begin=0,
        end=40000,
        by_epoch=False,
    )
]
# The lr above is for a total batch of 32; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=32)

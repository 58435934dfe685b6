# Semantic FPN with a VAN backbone on ADE20K, 512x512 crops, 40k iterations
# at batch 32 (8 GPUs x 4): mmseg's FPN R-50 ADE20K 40k with the changes
# below. Leaf configs state the attention, arch, kernel size, ImageNet
# checkpoint, stochastic depth and the FPN input channels.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    # mmseg's ade20k.py with VAN-Seg's multi-scale + flip --tta
    './ade20k_tta.py',
    'mmseg::_base_/schedules/schedule_40k.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
# mmseg's visualizer that also draws browse_dataset's transposed images and
# tints only class pixels (mmseg's darkens the rest): --show-dir, inferencers.
visualizer = dict(type='SegOverlayVisualizer')
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
# Pad every training batch to the crop size (mmseg's ADE20K configs).
data_preprocessor = dict(size=crop_size)
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
# mmseg projects/van: test images resized to a multiple of 32.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='ResizeToMultiple', size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
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

# Quick start: a small VAN-LSKA classifier (k=23) trained from scratch on
# the synthetic shapes classification set (projects/van_lska/datasets/
# shapes_classification.py): 128x128 images of one textured shape each,
# labelled circle / triangle / square / star; the fill texture is only a
# partial cue (the class's own texture in 62.5 % of the images). Small enough
# for a CPU: python tools/quickstart.py --task cls.
# The ImageNet recipe of VAN-LSKA-B0 (../van_lska_b0_in1k.py) with what the
# quick start changes below.
_base_ = ['../van_lska_b0_in1k.py']

data_root = 'data/shapes_cls'
# label i = CLASSES[i] of projects/van_lska/datasets/synthetic_shapes.py
# (the generator writes meta/{train,val}.txt with these indices)
classes = ('circle', 'triangle', 'square', 'star')
# (h, w) the images are generated and trained at; the metafile generator
# measures the FLOPs at this size
crop_size = (128, 128)
max_epochs = 10

model = dict(
    backbone=dict(
        # B0 with a third of its blocks, half of its widths and MLP ratio 4:
        # a training step costs about 1/7 of B0's per 128x128 image on one
        # CPU thread (7 vs 54 ms, measured side by side). The full B0:
        # --cfg-options model.backbone.arch=b0 model.head.in_channels=256
        arch=dict(
            _delete_=True,
            embed_dims=[16, 32, 64, 128],
            depths=[1, 1, 2, 1],
            mlp_ratios=[4, 4, 4, 4],
        ),
        drop_path_rate=0.0,  # a short schedule
    ),
    head=dict(
        num_classes=len(classes),
        in_channels=128,
        # plain cross-entropy; no Mixup/CutMix (train_cfg below)
        loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1,),
    ),
    train_cfg=dict(_delete_=True),
)
data_preprocessor = dict(num_classes=len(classes))

# A shape keeps its class under flips and quarter turns; no crops (they
# could cut the shape off), no colour or RandAugment changes.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size[::-1]),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25],
        direction=['horizontal', 'vertical'],
    ),
    dict(type='Rotate', angle=90.0, prob=0.5, random_negative_prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size[::-1]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix='train',
        metainfo=dict(classes=classes),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix='val',
        metainfo=dict(classes=classes),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1,))
test_evaluator = val_evaluator

# From scratch on one CPU: batch 32, AdamW at lr 2e-3 (the recipe's 1e-3
# per 1024 images is for 300 epochs), one warm-up epoch, cosine to 1e-5,
# gradient clipping for the first noisy steps.
optim_wrapper = dict(optimizer=dict(lr=2e-3), clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-2,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(enable=False, base_batch_size=32)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
)
randomness = dict(seed=0)

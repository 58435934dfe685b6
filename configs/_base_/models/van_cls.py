# ImageClassifier on a VAN backbone: stage-4 features, global average
# pooling, one linear layer; label smoothing 0.1, Mixup 0.8 / CutMix 1.0
# (timm switches between them per batch with probability 0.5, as
# mmpretrain's RandomBatchAugment does). Leaf configs set the backbone
# type/arch/drop_path_rate and the head's in_channels (C4: b0 256, else 512).
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        drop_path_rate=0.1,
        out_indices=(3,),
        norm_cfg=dict(type='BN'),
        stage_norm_cfg=dict(type='LN', eps=1e-6),
    ),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=256,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'
        ),
        cal_acc=False,
    ),
    train_cfg=dict(
        augments=[
            dict(type='Mixup', alpha=0.8),
            dict(type='CutMix', alpha=1.0),
        ]
    ),
)

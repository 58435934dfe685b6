# Mask R-CNN + FPN with a VAN backbone on COCO, 1x (12 epochs, batch 16 =
# 8 GPUs x 2): mmdet's Mask R-CNN R-50 FPN 1x with the changes below.
# Leaf configs state the attention, arch, kernel size, ImageNet checkpoint
# and the FPN input channels.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './coco_tta.py',  # --tta: 3 scales x flip
    './checkpoint_check.py',  # custom_hooks: the loaded checkpoint
]
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
model = dict(
    # VAN paper (detection) / VAN-Det configs: the four stages at strides
    # 4-32 feed the FPN, stochastic depth 0.1; LayerNorm eps 1e-5 after each
    # stage as in the dense-prediction backbones of VAN-Seg/VAN-Det.
    backbone=dict(
        _delete_=True,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        stage_norm_cfg=dict(type='LN', eps=1e-5),
        init_cfg=dict(type='Pretrained'),
    ),
)
# --tta: boxes merged as mmdet's DetTTAModel does, masks by a vote (mmdet
# 3.3's DetTTAModel refuses masks).
tta_model = dict(type='InstanceSegTTAModel')
# VAN paper (detection): AdamW lr 1e-4, weight decay 0.05 instead of SGD.
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0001,
        betas=(0.9, 0.999),
        weight_decay=0.05,
    ),
)

# Cascade Mask R-CNN + FPN with a VAN backbone on COCO, 3x (36 epochs,
# batch 16 = 8 GPUs x 2): the Swin/ConvNeXt 3x recipe the VAN paper uses,
# i.e. mmdet's ConvNeXt-T config below (4conv1fc box heads with SyncBN and
# GIoU loss, multi-scale + crop training, warmup 1000 iterations, lr x0.1
# after epochs 27 and 33), with the changes below. (tools/train.py and
# tools/test.py turn SyncBN into BN without a GPU.) Leaf configs state the
# attention, arch, kernel size, ImageNet checkpoint and the FPN input
# channels.
_base_ = [
    'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',  # noqa: E501
    './coco_tta.py',  # --tta: 3 scales x flip
    './checkpoint_check.py',  # custom_hooks: the loaded checkpoint
]
# Our backbone instead of mmpretrain's ConvNeXt (whose checkpoint URL the
# base names at top level: unused here, so cleared).
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
checkpoint_file = None
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
# VAN paper (detection): AdamW lr 1e-4, weight decay 0.05, fp32, one lr for
# all layers (ConvNeXt: lr 2e-4 with layer-wise decay 0.7, mixed precision).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05
    ),
)

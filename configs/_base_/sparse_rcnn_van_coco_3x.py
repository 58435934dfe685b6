# Sparse R-CNN (100 proposals) + FPN with a VAN backbone on COCO, 3x
# (36 epochs, multi-scale 480-800, batch 16 = 8 GPUs x 2, AdamW lr 2.5e-5,
# weight decay 1e-4, gradient clipping 1.0): mmdet's own Sparse R-CNN 3x
# recipe, of which the VAN paper changes only the backbone. Leaf configs
# state the attention, arch, kernel size, ImageNet checkpoint and the FPN
# input channels.
_base_ = [
    'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_ms-480-800-3x_coco.py',
    './coco_tta.py',  # --tta: 3 scales x flip, boxes merged by NMS
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

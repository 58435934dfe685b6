# The VAN backbone shared by the detection model bases: 4 stages with
# outputs at strides 4/8/16/32, LayerNorm eps 1e-5 after each stage (dense
# prediction), stochastic depth 0.1. The leaf configs choose the attention
# (VAN_LKA k=21 / VAN_LSKA k=23), the size (arch), the ImageNet checkpoint
# and the neck input channels. Channels: b0 (32, 64, 160, 256);
# b1/b2/b3 (64, 128, 320, 512).
model = dict(
    backbone=dict(
        type='VAN_LKA',
        arch='b0',
        kernel_size=21,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        stage_norm_cfg=dict(type='LN', eps=1e-5),
        init_cfg=dict(type='Pretrained', checkpoint=None),
    ),
    neck=dict(in_channels=[32, 64, 160, 256]),
)

# RetinaNet, 1x (12 epochs), AdamW lr 1e-4, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LSKA-B0 backbone (k=23), ImageNet-1K init from a local file
# (the authors' weights have no public URL; see tools/model_converters/van_convert.py).
_base_ = './retinanet_van_lka_b0.py'

checkpoint = 'data/pretrained/van_lska_b0_k23.pth'
model = dict(
    backbone=dict(
        type='VAN_LSKA', kernel_size=23, init_cfg=dict(checkpoint=checkpoint)
    )
)

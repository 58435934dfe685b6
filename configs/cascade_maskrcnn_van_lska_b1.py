# Cascade Mask R-CNN (4conv1fc + GIoU), 3x (36 epochs) multi-scale + crop,
# AdamW lr 1e-4, batch 16 (8 GPUs x 2)
# on COCO with a VAN-LSKA-B1 backbone (k=23), ImageNet-1K init from a local file
# (the authors' weights have no public URL; see tools/model_converters/van_convert.py).
_base_ = './cascade_maskrcnn_van_lka_b1.py'

checkpoint = 'data/pretrained/van_lska_b1_k23.pth'
model = dict(
    backbone=dict(
        type='VAN_LSKA', kernel_size=23, init_cfg=dict(checkpoint=checkpoint)
    )
)

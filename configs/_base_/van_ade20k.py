# What the ADE20K bases of the VAN segmentors share (fpn_van_ade20k_40k.py,
# upernet_van_ade20k_160k.py): mmseg's ADE20K data (512x512 crops) with
# VAN-Seg's multi-scale + flip --tta, mmseg's runtime, and the VAN-Seg test
# pipeline. The model and its schedule come from each family's base, and so
# do the backbone and optimiser changes: they override mmseg's model and
# schedule bases, and mmengine refuses a key that two bases of one config
# both set.
_base_ = [
    # mmseg's ade20k.py with VAN-Seg's multi-scale + flip --tta
    './ade20k_tta.py',
    'mmseg::_base_/default_runtime.py',
    './checkpoint_check.py',  # custom_hooks: the loaded checkpoint
]
custom_imports = dict(
    imports=['projects.van_lska'], allow_failed_imports=False
)
# mmseg's visualizer that also draws browse_dataset's transposed images and
# tints only class pixels (mmseg's darkens the rest): --show-dir, inferencers.
visualizer = dict(type='SegOverlayVisualizer')
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

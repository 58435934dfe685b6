# mmseg's ADE20K dataset base with the multi-scale + flip test of the VAN
# paper's UperNet/Semantic FPN numbers (tools/test.py --tta, mim test mmseg
# --tta; tta_model is mmseg's SegTTAModel from its default_runtime.py):
# VAN-Seg's aug-test (mmseg 0.x MultiScaleFlipAug, img_scale (2048, 512),
# img_ratios 0.5-1.75, flip, AlignResize to a multiple of 32). Each of the
# 12 views is resized to fit 2048r x 512r and then to a multiple of 32, as
# the single-scale test pipeline of the family bases; the views' class
# scores are averaged. (mmseg's own tta_pipeline scales the original image
# by r instead, without the 2048x512 resize.)
_base_ = 'mmseg::_base_/datasets/ade20k.py'
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(2048 * r), int(512 * r)),
                    keep_ratio=True,
                )
                for r in img_ratios
            ],
            [dict(type='ResizeToMultiple', size_divisor=32)],
            [
                dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                dict(type='RandomFlip', prob=1.0, direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ],
    ),
]

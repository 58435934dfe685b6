# The check of the checkpoint a run loads (projects/van_lska/weights/
# coverage.py): CheckpointCoverageHook takes the runner's load_from, which
# mmseg's and mmdet's own tools/test.py, dist_test.sh and `mim test` set from
# their --checkpoint, and before it is loaded refuses a model-zoo file whose
# bytes do not match its name (mim download checks no hash) and a file that
# does not fill the whole model; the log says how many tensors were loaded
# and what is missing. Without load_from (a training from scratch) it does
# nothing. Our tools/test.py and tools/train.py replace this entry with
# theirs (--allow-partial); elsewhere:
# --cfg-options custom_hooks.0.allow_partial=True.
custom_hooks = [dict(type='CheckpointCoverageHook')]

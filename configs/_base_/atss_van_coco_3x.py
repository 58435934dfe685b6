# ATSS + FPN with a VAN backbone on COCO, 3x (36 epochs, batch 16 = 8 GPUs
# x 2) with multi-scale training: the ATSS row of the VAN paper's 3x
# detector table, which compares with PVTv2-b2's ATSS. The shared one-stage
# 3x base is mmdet's ATSS R-50 1x with the VAN changes, so its head (ATSS
# head: GIoU loss, centerness) is this detector's.
_base_ = './onestage_van_coco_3x.py'

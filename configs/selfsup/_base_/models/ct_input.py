# What every pretraining model sees: one CT slice as one channel that
# HUWindow already mapped to [0, 1]; centre and scale once more (not the
# ImageNet RGB statistics of mmselfsup's configs). Model bases use it as
# `data_preprocessor={{_base_.data_preprocessor}}` with backbone in_channels=1
# (replicating the slice to RGB would only triple the stem's compute).
data_preprocessor = dict(
    type='SelfSupDataPreprocessor', mean=[0.5], std=[0.25], bgr_to_rgb=False)

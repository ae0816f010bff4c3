# Old name kept working: an alias of the 1-volume config. It used to say
# "1 %" while training on max(1, round(0.01 * 24)) volumes;
# it now trains on 1 of the 20 training volumes (true fraction 1/20).
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_1vol.py']

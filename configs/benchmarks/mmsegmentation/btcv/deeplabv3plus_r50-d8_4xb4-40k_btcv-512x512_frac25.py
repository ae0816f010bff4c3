# Old name kept working: an alias of the 5-volume config. It used to say
# "25 %" while training on max(1, round(0.25 * 24)) volumes;
# it now trains on 5 of the 20 training volumes (true fraction 5/20).
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_5vol.py']

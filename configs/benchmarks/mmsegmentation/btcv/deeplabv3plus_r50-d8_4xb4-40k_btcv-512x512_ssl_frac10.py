# Old name kept working: an alias of the 2-volume config. It used to say
# "10 %" while training on max(1, round(0.10 * 24)) volumes;
# it now trains on 2 of the 20 training volumes (true fraction 2/20).
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_ssl_2vol.py']

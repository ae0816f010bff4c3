# Compatibility name (docs/DESIGN.md) of the 1-volume config: 1 of the 20
# training volumes (true fraction 1/20), whatever the "frac" in the name says.
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_ssl_1vol.py']

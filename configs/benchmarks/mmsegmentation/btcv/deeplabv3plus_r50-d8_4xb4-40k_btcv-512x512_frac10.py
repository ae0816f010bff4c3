# Compatibility name (docs/DESIGN.md) of the 2-volume config: 2 of the 20
# training volumes (true fraction 2/20), whatever the "frac" in the name says.
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_2vol.py']

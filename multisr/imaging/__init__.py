"""Images as arrays: colour (BT.601 YCbCr), the three bicubics, the geometry contract, PSNR and SSIM."""

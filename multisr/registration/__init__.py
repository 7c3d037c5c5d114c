"""Registering frames and bursts (Fourier-Mellin, robust Lucas-Kanade), the reference frame, and
tracking a target that moves on its own."""

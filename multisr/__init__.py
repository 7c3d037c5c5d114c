"""multisr: multi-frame super-resolution of bursts of photographs (SRCNN + registration + fusion)."""

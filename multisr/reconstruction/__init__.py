"""The multi-frame solve (observation model, agreement with the reference, the tiled solve) and the
fusions of aligned frames."""

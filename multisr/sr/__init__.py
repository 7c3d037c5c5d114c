"""The SR networks: the architecture (:mod:`.arch`), weights files (:mod:`.weights`), the torch
device (:mod:`.device`) and applying a model to images (:mod:`.inference`)."""

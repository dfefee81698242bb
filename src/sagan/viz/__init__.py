"""Seeing what a GAN learned: sample sheets, attention maps, interpolations, training curves and the run report.

Reads run directories and checkpoints (`sagan.checkpoints`); knows nothing of the training loop.
"""

"""Training on top of the executor core: data, the training loop, checkpoints, data parallel.

It imports the executor core only; the command line (``executor.app``) imports it.
"""

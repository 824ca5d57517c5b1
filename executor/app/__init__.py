"""The application layer: the ``sublinear`` command line and its commands.

``cli`` parses and dispatches; ``plan``, ``memcost``, ``pareto``, ``demo`` and ``train`` are the
commands; ``nets`` resolves NET arguments; ``cliargs`` holds the shared option types. It imports
the executor core (``executor``: bind, kernels, run) and ``executor.training``; neither imports
it back (``tests/test_layering.py``).
"""

"""Example networks: ``*.sym`` files in the network language and their Python-API builders.

Installed as the package ``sublinear_examples`` (``sublinear plan resnet`` reads
``resnet.sym`` from it). The network modules (``mlp``, ``resnet``, ``lstm``) import only
:mod:`symbol`; scripts beside them may use the whole framework.
"""

"""Stands in for TensorFlow in JAX test runs: importing it fails as on a machine where
TensorFlow is not installed (a GPU node with JAX alone). ``tests/conftest.py`` puts this
folder first on the path of the test process, its subprocesses and Ray workers."""

raise ImportError("TensorFlow is not installed here (JAX test run: the JAX path must not need it)")

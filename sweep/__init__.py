"""The sweep: the only package that knows Ray Tune and Optuna."""

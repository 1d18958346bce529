"""The sweep: the only package that knows Ray Tune and Optuna (built in issue 3)."""

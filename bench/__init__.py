"""Measurement scripts (not tests): run each as `.venv/bin/python -m bench.<name>`."""

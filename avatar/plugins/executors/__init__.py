"""Executor plugins beyond the built-in local and ray (``avatar/run/executor.py``): one file each."""

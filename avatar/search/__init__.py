"""Stages 2-5: the space, z3 pruning, the objectives and the evolutionary search."""

"""Built-in constraint plugins: each adds one z3 assertion over the space."""

"""Built-in effectiveness indicators."""

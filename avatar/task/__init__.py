"""Task data: the task contract (splits, labels, pairs) and folder-based tasks."""

"""The floor every stage stands on: errors, atomic files, the plugin registries, progress."""

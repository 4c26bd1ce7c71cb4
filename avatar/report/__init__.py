"""Stage 7 and after: measuring, reporting, exporting and using students."""

"""Code as structure: tree-sitter parsing, GraphCodeBERT's data flow, metamorphic transforms."""

"""Code as structure: tree-sitter parsing, GraphCodeBERT's data flow, metamorphic transforms.

* ``parsing``: the grammars, each language's rules, leaf tokens (shared by everything here).
* ``dataflow`` and ``control_flow``: GraphCodeBERT's data-flow graph; ``graphcodebert``: its
  model inputs.
* ``scopes``, ``rename``, ``transform``: metamorphic transformations, semantics-preserving
  rewrites of a function (renamed parameters and locals, ...) that test and augment a
  task's data without new labels: which identifiers are a function's own (scope by
  scope), the renaming engine with its safety check and name mining, and the small
  ``Transform`` interface every transform plugin (``TRANSFORMS``) implements.
* ``functions`` and ``gitdiff``: what ``avatar scan`` classifies, every function of a file
  (file, lines, name, text) and the lines a git revision's diff touched.
"""

"""Metamorphic code transformations: semantics-preserving rewrites of C and Java functions.

Why: a distilled student should give the same answer for a function and for a copy of it
that only differs in ways that cannot change its meaning (renamed locals, ...). These
copies ("metamorphic" variants) test and augment a task's data without new labels.

* ``avatar.code.scopes``: which identifiers of a function are its own parameters and
  locals, scope by scope (over tree-sitter parse trees, the parser of ``avatar.dataflow``).
* ``avatar.code.rename``: the identifier-renaming engine, its safety check and the
  mining of realistic new names from a task's training code.
* ``avatar.code.transform``: the small ``Transform`` interface that every transform
  plugin (``avatar.plugins.transforms``, registry ``TRANSFORMS``) implements, and
  ``transform_all``, which applies one reproducibly to a whole data set.
"""

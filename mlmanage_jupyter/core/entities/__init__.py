"""Entities: plain data and validation, no SQL, no I/O (the second layer of ``core/``).

- :mod:`.names`: name rules (model, image, service), ``split_id``, tag/property dicts and filters.
- :mod:`.records`: what the stores return (``ModelRecord``, ``ImageRecord``, ``ServiceRecord``)
  and ``ScoringResponse``.
- :mod:`.lists`: ``ResourceList``, the one base of ``ModelList``/``ImageList``/``ServiceList``;
  ``format_bytes``.
"""

"""Core engine: pure Python, no Jupyter imports (tests/core/test_layering.py proves it)."""

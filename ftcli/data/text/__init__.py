"""Texts for a classifier: tokenized once at setup, batched as token ids plus an attention mask.

``transformers`` is imported inside functions only (``tokenizer.py``), so an image run never imports it.
"""

"""Providers of the work that may call an outside model: LLM, embedder (and its HTTP), chosen by settings."""

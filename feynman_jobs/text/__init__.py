"""Offline text processing for Chinese, English and mixed text: summaries, reviews, chunks, embeddings."""

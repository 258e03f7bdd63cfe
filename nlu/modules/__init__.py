"""Neural building blocks: embeddings, encoders, tag and intent heads."""

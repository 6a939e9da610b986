"""Chapter "words and attention" (docs/*/attention/): embeddings, seq2seq, beams."""

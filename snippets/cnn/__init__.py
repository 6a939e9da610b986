"""Convolutional networks (docs/*/cnn/)."""

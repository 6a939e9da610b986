"""Generative adversarial networks (docs/*/gan/): the game, mode coverage on a ring,
conditional generation on digits, and generators / discriminators without the other."""

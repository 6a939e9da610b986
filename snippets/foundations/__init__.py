"""Foundations: learning as optimisation (docs/*/foundations/): bias and variance,
losses, optimizers, activations, backpropagation, training deep nets well."""

"""Training and measuring: the synthetic scene set, training data, `foley train`'s stages and evaluation."""

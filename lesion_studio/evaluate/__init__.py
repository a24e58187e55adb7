"""Evaluation: ROC AUC with bootstrapped confidence intervals and the threshold filter (pure numpy + sklearn)."""

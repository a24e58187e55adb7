"""Trainers (UNIT GAN, DRN classifier) and what they share. Needs the `train` extra (torch)."""

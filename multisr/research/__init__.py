"""Simulated bursts with their truth, benchmarks, evaluation and training."""

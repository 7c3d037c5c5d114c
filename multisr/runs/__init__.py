"""Pipelines, their stages and the run engine that runs them over a burst."""

"""What the commands make of runs: the comparison report, super-resolved videos, batches of bursts."""

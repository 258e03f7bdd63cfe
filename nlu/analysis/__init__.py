"""Looking back at runs: `runs` and the comparison of seeds, training curves, gradient flow."""

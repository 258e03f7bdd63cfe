"""Scores, evaluation through the Parser, calibration, and reports with their figures."""

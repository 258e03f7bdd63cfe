"""Training with PyTorch Lightning. Importing this package is the only way Lightning loads."""

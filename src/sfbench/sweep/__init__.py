"""The sampling sweep as library code: cells, their configuration, the sweep loop and its record."""

"""VAU-Bench annotations, video loading and preprocessing."""

"""marsad.training: how models are made and judged."""

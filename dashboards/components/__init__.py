"""Pieces several pages use: confirmation, replica cards, the app panel."""

"""Parcours router: owns the customer directory and decides which channel delivers what."""

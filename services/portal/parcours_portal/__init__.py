"""Parcours portal: the credit team's console and the recipient's portal."""

"""Parcours tracker: keeps every invoice's journey and proves arrival (clicks, partner acks)."""

"""Parcours channels: hands invoices and reminders to their delivery channels."""

"""Parcours dunning: plans each invoice's reminders and emits them when they fall due."""

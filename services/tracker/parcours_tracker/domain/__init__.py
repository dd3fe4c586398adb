"""Pure rules of the tracker: journal entries, status precedence, ack signatures. No IO."""

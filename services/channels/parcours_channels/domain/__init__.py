"""Pure rules of delivery: wording, identifiers, and which event a delivery ends with."""

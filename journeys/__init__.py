"""Customer Journeys: raw customer exports in, activation-ready segments out."""

__version__ = "0.1.0"

"""tilfreds: customer-satisfaction surveys over SMS that keep a privacy notice's promises."""

__version__ = "0.1.0"

"""Getting text to and from phones: the transport Protocol and its adapters. Knows no surveys."""

"""The REST API (``/api/v1``): thin routes that parse, call one service and render."""

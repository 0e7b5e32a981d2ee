"""Remote control of a station over HTTP (`socketeer serve`): app.api.server."""

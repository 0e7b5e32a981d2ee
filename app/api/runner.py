"""The API server in a background thread (the window's "Remote control" switch, tests):
uvicorn on its own event loop, started and stopped from the caller's thread."""

from __future__ import annotations

import threading
import time
from typing import Any

from app.core.errors import InputError

START_TIMEOUT_S = 10.0


class ApiServer:
    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8750) -> None:
        import uvicorn

        self.host, self.port = host, port
        self._server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning")
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Listen; raises InputError when the port cannot be had."""
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InputError(f"the API could not listen on {self.host}:{self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_S)
            self._thread = None

"""moto's server, applying one request at a time.

Real DynamoDB and S3 apply each request atomically. moto's in-memory backends are not
thread-safe: its TransactWriteItems deep-copies whole tables while other threads write them,
and crashes under parallel transactions. Serialising requests restores DynamoDB's per-request
atomicity, which is all the contract and race tests rely on.

Usage: moto_server.py PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1])
    os.environ["MOTO_PORT"] = str(port)
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # Drain the response inside the lock, so no backend state is read outside it.
            return list(app(environ, start_response))

    run_simple("127.0.0.1", port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()

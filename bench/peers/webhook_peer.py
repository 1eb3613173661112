"""The webhook benchmark's peer (bench/src/webhook.rs): the seed's stack, FastAPI + uvicorn,
verifying each delivery with Composio's Python SDK (`Triggers.verify_webhook`, from the
pinned `composio` package) and running one no-op handler.

    WEBHOOK_SECRET=whsec_... WEBHOOK_PATH=/webhook WORKERS=2 python webhook_peer.py

Prints `READY 127.0.0.1:<port>` once the socket listens, then `WORKER_READY <pid>` from each
worker once it serves (importing the SDK takes seconds). Stops when stdin closes (or on
SIGTERM); its workers stop with it.
"""

import contextlib
import os
import signal
import socket
import sys
import threading

from fastapi import FastAPI, Request, Response

SECRET = os.environ.get("WEBHOOK_SECRET", "")
PATH = os.environ.get("WEBHOOK_PATH", "/webhook")


def _load_sdk():
    """Composio's triggers resource and its exceptions module (imports take seconds)."""
    # No telemetry from a benchmark.
    from composio.core.models.base import allow_tracking

    allow_tracking.set(False)
    from composio import Composio, exceptions

    # verify_webhook is local (timestamp, HMAC, payload parsing): the API key is never used.
    return Composio(api_key="bench-offline").triggers, exceptions


triggers = None
exceptions = None


@contextlib.asynccontextmanager
async def lifespan(_app):
    global triggers, exceptions
    triggers, exceptions = _load_sdk()
    _die_with_parent()
    print(f"WORKER_READY {os.getpid()}", flush=True)
    yield


app = FastAPI(lifespan=lifespan)


def handler(event) -> None:
    """The no-op handler."""


@app.post(PATH)
async def webhook(request: Request) -> Response:
    body = await request.body()
    headers = request.headers
    try:
        result = triggers.verify_webhook(
            id=headers.get("webhook-id", ""),
            payload=body.decode("utf-8"),
            signature=headers.get("webhook-signature", ""),
            timestamp=headers.get("webhook-timestamp", ""),
            secret=SECRET,
        )
    except exceptions.WebhookSignatureVerificationError:
        return Response(status_code=401)
    except exceptions.WebhookPayloadError:
        return Response(status_code=400)
    handler(result["payload"])
    return Response(status_code=200)


def _die_with_parent() -> None:
    """A worker ends with the supervisor even if the supervisor is killed (Linux)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def main() -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    workers = int(os.environ.get("WORKERS", "1"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    host, port = sock.getsockname()
    print(f"READY {host}:{port}", flush=True)

    config = uvicorn.Config(
        "webhook_peer:app",
        workers=workers,
        access_log=False,
        log_level="warning",
        backlog=2048,
    )
    server = uvicorn.Server(config) if workers == 1 else None

    # Stop when the harness closes stdin: a single server is asked to exit (a SIGTERM would
    # be re-raised by uvicorn after its shutdown, ending the process "by signal"); the
    # multi-worker supervisor stops on SIGTERM.
    def watch_stdin() -> None:
        sys.stdin.read()
        if server is not None:
            server.should_exit = True
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_stdin, daemon=True).start()

    if server is None:
        Multiprocess(config, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()

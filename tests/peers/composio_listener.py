"""Composio's own Python SDK listener, pointed at a local hub.

Run by tests/hub.rs (and the realtime benchmark) with the peers' virtualenv:
  HUB_HOST, HUB_PORT        where the hub's Pusher websocket listens (plain ws)
  COMPOSIO_API_KEY, COMPOSIO_BASE_URL   the hub's API key and URL
  EXPECT                    how many events to wait for (default 1)

The SDK builds its pysher client with Pusher's cluster host; the only change made here is
the host, port and TLS of that client (pysher's own `custom_host`/`port`/`secure`
parameters). Credentials, channel auth and the subscription go through the SDK unchanged.
Prints READY once subscribed, then one JSON line per event received, then DONE.
"""

import json
import os
import sys
import threading

from composio import Composio
from composio.core.models import triggers

HOST = os.environ["HUB_HOST"]
PORT = int(os.environ["HUB_PORT"])
EXPECT = int(os.environ.get("EXPECT", "1"))
QUIET = os.environ.get("QUIET") == "1"  # benchmarks: print only READY and DONE

_original_init = triggers._ComposioPusher.__init__


def _local_init(self, *args, **kwargs):
    kwargs.update(custom_host=HOST, port=PORT, secure=False)
    _original_init(self, *args, **kwargs)


triggers._ComposioPusher.__init__ = _local_init

composio = Composio(api_key=os.environ["COMPOSIO_API_KEY"], base_url=os.environ["COMPOSIO_BASE_URL"])
subscription = composio.triggers.subscribe(timeout=15)
received = []
done = threading.Event()
lock = threading.Lock()  # callbacks run on a thread pool


@subscription.handle(trigger_slug="SLACK_RECEIVE_MESSAGE")
def on_message(event):
    if not QUIET:
        print(json.dumps({
            "id": event["id"],
            "trigger_slug": event["trigger_slug"],
            "toolkit_slug": event["toolkit_slug"],
            "user_id": event["user_id"],
            "payload": event["payload"],
        }), flush=True)
    with lock:
        received.append(1)
        if len(received) >= EXPECT:
            done.set()


print("READY", flush=True)
ok = done.wait(timeout=float(os.environ.get("TIMEOUT", "30")))
subscription.stop()
print("DONE" if ok else "TIMEOUT", flush=True)
sys.exit(0 if ok else 1)

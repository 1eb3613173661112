"""The Standard Webhooks reference implementation (PyPI `standardwebhooks`), driven by
tests/webhook_verify.rs.

  post URL SECRET MSG_ID BODY_FILE   sign BODY with SECRET (whsec_…) as of now and POST it;
                                     prints the HTTP status
  verify SECRET HEADERS_JSON BODY_FILE
                                     verify a delivery signed elsewhere; prints OK or FAIL: …
"""

import json
import sys
import urllib.error
import urllib.request
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def post(url, secret, msg_id, body_file):
    body = open(body_file, "rb").read().decode("utf-8")
    now = datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=now, data=body)
    request = urllib.request.Request(url, data=body.encode("utf-8"), method="POST", headers={
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.status)
    except urllib.error.HTTPError as e:
        print(e.code)


def verify(secret, headers_json, body_file):
    body = open(body_file, "rb").read().decode("utf-8")
    try:
        Webhook(secret).verify(body, json.loads(headers_json))
        print("OK")
    except WebhookVerificationError as e:
        print(f"FAIL: {e}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"post": post, "verify": verify}[command](*args)

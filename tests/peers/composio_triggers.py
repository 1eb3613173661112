"""Composio's own Python SDK managing triggers against a local hub.

Run by tests/hub_triggers.rs with the peers' virtualenv:
  COMPOSIO_API_KEY, COMPOSIO_BASE_URL   the hub's API key and URL

Drives the SDK's management calls as an application would (`composio.triggers.get_type`,
`list`, `create`, `list_active`, `disable`, `enable`, `delete`) and prints one JSON line per
step, `{"step": NAME, ...}`, for the Rust test to assert on; then DONE. The SDK's client is
switched to strict response validation, so every answer must fit the SDK's own models
(required fields present, types right), not only the fields read here.
"""

import json
import os
import sys

from composio import Composio, exceptions

composio = Composio(api_key=os.environ["COMPOSIO_API_KEY"], base_url=os.environ["COMPOSIO_BASE_URL"])
# The generated client validates answers against its pydantic models instead of building
# them leniently.
composio._client._strict_response_validation = True

SLUG = "GITHUB_STAR_ADDED_EVENT"
USER = "sdk-user"
CONFIG = {"owner": "octocat", "repo": "hello-world"}


def emit(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def active(**filters):
    page = composio.triggers.list_active(**filters)
    return [
        {
            "id": item.id,
            "trigger_name": item.trigger_name,
            "user_id": item.user_id,
            "connected_account_id": item.connected_account_id,
            "trigger_config": item.trigger_config,
            "disabled_at": item.disabled_at,
        }
        for item in page.items
    ]


trigger_type = composio.triggers.get_type(SLUG)
emit(
    "get_type",
    slug=trigger_type.slug,
    toolkit=trigger_type.toolkit.slug,
    type=trigger_type.type,
    required=trigger_type.config.get("required"),
    payload_properties=sorted(trigger_type.payload.get("properties", {})),
)

types = composio.triggers.list(toolkit_slugs=["github"])
emit("list_types", slugs=[t.slug for t in types.items], total=types.total_items)

try:
    composio.triggers.create(SLUG, user_id=USER, trigger_config={"owner": "octocat"})
    emit("bad_config", refused=False)
except Exception as e:  # the generated client's BadRequestError
    emit("bad_config", refused=True, kind=type(e).__name__, status=getattr(e, "status_code", None),
         message=str(e), body=getattr(e, "body", None))

try:
    composio.triggers.create("NO_SUCH_TRIGGER", user_id=USER)
    emit("unknown_type", refused=False)
except exceptions.TriggerTypeNotFound as e:
    emit("unknown_type", refused=True, kind=type(e).__name__, message=str(e))

created = composio.triggers.create(SLUG, user_id=USER, trigger_config=CONFIG)
again = composio.triggers.create(SLUG, user_id=USER, trigger_config=CONFIG)
emit("create", trigger_id=created.trigger_id, again=again.trigger_id)
trigger_id = created.trigger_id

emit("list_active", items=active(trigger_ids=[trigger_id]))

disabled = composio.triggers.disable(trigger_id)
emit(
    "disable",
    status=disabled.status,
    active=active(trigger_ids=[trigger_id]),
    with_disabled=active(trigger_ids=[trigger_id], show_disabled=True),
)

enabled = composio.triggers.enable(trigger_id)
emit("enable", status=enabled.status, active=active(trigger_names=[SLUG]))

deleted = composio.triggers.delete(trigger_id)
emit("delete", trigger_id=deleted.trigger_id, left=active(show_disabled=True))

print("DONE", flush=True)
sys.exit(0)

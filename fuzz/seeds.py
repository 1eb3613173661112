#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/seeds/<target>/) from the sample
payloads in tests/fixtures and the macro's trybuild cases, in each target's input layout
(see fuzz/props/*.rs). Deterministic: run it again after a fixture changes and commit the
result. scripts/fuzz.sh hands these folders to libFuzzer beside the working corpus."""

import json
import pathlib
import random
import re
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SEEDS = ROOT / "fuzz" / "seeds"


def events():
    """(name, compact JSON bytes) of every event fixture, plus a V2 and a legacy body."""
    out = []
    for path in sorted(FIXTURES.glob("*.json")):
        value = json.loads(path.read_text())
        if isinstance(value.get("event"), dict) and "body" in value["event"]:
            value = value["event"]["body"]  # a captured request: its body is the event
        out.append((path.stem, json.dumps(value, separators=(",", ":")).encode()))
    v3 = json.loads((FIXTURES / "v3_slack_receive_message.json").read_text())
    payload = v3["data"]
    v2 = {
        "type": "slack_receive_message",
        "timestamp": "2026-11-20T09:14:03.512Z",
        "log_id": "log_v2",
        "data": dict(payload, connection_id="ca_1", connection_nano_id="cn_1",
                     trigger_id="ti_1", trigger_nano_id="tn_1", user_id="default"),
    }
    legacy = {
        "appName": "slack",
        "clientId": "client_1",
        "payload": payload,
        "originalPayload": payload,
        "metadata": {
            "id": "ti_1", "nanoId": "tn_1", "triggerName": "SLACK_RECEIVE_MESSAGE",
            "triggerData": "{}", "triggerConfig": {},
            "connection": {"id": "ca_1", "connectedAccountNanoId": "can_1",
                           "integrationId": "int_1", "authConfigNanoId": "ac_1",
                           "clientUniqueUserId": "default", "status": "ACTIVE"},
        },
    }
    for name, value in (("v2_slack_receive_message", v2), ("legacy_slack_receive_message", legacy)):
        out.append((name, json.dumps(value, separators=(",", ":")).encode()))
    return out


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def decode_seeds(evs):
    for name, body in evs:
        write("decode", name, body)
        write("decode", name + "-bom", b"\xef\xbb\xbf" + body)
    v3 = dict(evs)["v3_slack_receive_message"]
    # A repeated key: the fast path declines, the general path keeps the last.
    write("decode", "v3-repeated-id", v3.replace(b'{"id":', b'{"id":"first","id":', 1))


def ndjson_seeds(evs):
    lines = [body for _, body in evs]
    bare = json.dumps({"trigger_slug": "SLACK_RECEIVE_MESSAGE", "payload": {"text": "hi"},
                       "user_id": "u1"}).encode()
    write("hub_ndjson", "all-envelopes", b"\n".join(lines + [bare]) + b"\n")
    write("hub_ndjson", "crlf-and-blank-lines", b"\r\n\r\n".join(lines[:2]) + b"\r\n")
    write("hub_ndjson", "bare", bare)
    write("hub_ndjson", "second-line-bad", lines[0] + b"\n{\"hello\":1}\n" + lines[1])


def header(name, value):
    name, value = name.encode(), value.encode()
    return bytes([len(name)]) + name + bytes([len(value)]) + value


def webhook_seeds(evs):
    for name, body in evs:
        version = {"v1": "V1", "v3": "V3", "v2": "V2"}.get(name[:2], "")
        headers = [
            header("webhook-id", "msg_2f6c1d0e"),
            header("webhook-timestamp", "{ts}"),
            header("webhook-signature", "v1,AAAA {sig}"),
            header("x-composio-delivery-attempt", "2"),
        ]
        if version:
            headers.append(header("x-composio-webhook-version", version))
        for flags, secret in ((0x04, b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), (0x06, b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                              (0x97, b"rotated-secret")):
            data = bytes([flags, len(secret)]) + secret + bytes([3]) + b"old"
            data += bytes([len(headers)]) + b"".join(headers) + struct.pack("<H", 7) + b"\x20"
            write("webhook_verify", f"{name}-{flags:02x}", data + body)


def pusher_seeds(evs):
    rng = random.Random(7)

    def chunk_op(id_index, index, final, text, flags=0):
        assert len(text) <= 255
        return bytes([0, id_index, index, flags | (1 if final else 0), len(text)]) + text

    for name, body in evs:
        pieces = [body[i:i + 200] for i in range(0, len(body), 200)]
        ops = [chunk_op(0, i, i == len(pieces) - 1, p) for i, p in enumerate(pieces)]
        write("pusher_frames", name + "-in-order", b"\x00" + b"".join(ops))
        shuffled = ops[:]
        rng.shuffle(shuffled)
        # Out of order, one repeated, interleaved with a second id, as objects.
        other = [chunk_op(2, i, i == len(pieces) - 1, p, flags=2) for i, p in enumerate(pieces)]
        mixed = [x for pair in zip(shuffled, other) for x in pair] + shuffled[:1]
        write("pusher_frames", name + "-shuffled", b"\x00" + b"".join(mixed))
        # Small bounds, time passing, a sweep.
        small = b"\x01" + bytes([8]) + struct.pack("<H", 600) + struct.pack("<H", 2000) + bytes([2])
        small += struct.pack("<H", 250)
        gap = ops[:1] + ops[2:] + [bytes([2]) + struct.pack("<H", 200), bytes([4])]
        write("pusher_frames", name + "-gap-small-bounds", small + b"".join(gap))
    frame = json.dumps({"event": "pusher:ping", "data": {}}).encode()
    write("pusher_frames", "raw-ping", b"\x00\x01" + bytes([len(frame)]) + frame)


def macro_seeds():
    ui = ROOT / "listener-macros" / "tests" / "ui"
    n = 0
    for path in sorted(ui.glob("*/*.rs")):
        text = path.read_text()
        for m in re.finditer(r"#\[on_trigger(?:\((.*?)\))?\]\s*\n(.*?)(?=\n#\[on_trigger|\nfn main|\Z)", text, re.S):
            args = " ".join((m.group(1) or "").split())
            item = m.group(2).strip()
            n += 1
            write("macro_args", f"{path.parent.name}-{path.stem}-{n}", (args + "\n" + item).encode())


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    evs = events()
    decode_seeds(evs)
    ndjson_seeds(evs)
    webhook_seeds(evs)
    pusher_seeds(evs)
    macro_seeds()
    for folder in sorted(SEEDS.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()

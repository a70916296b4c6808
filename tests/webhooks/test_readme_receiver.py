"""The README's webhook receiver runs as written (only its address changed), as its own
process: a delivery from the server is accepted and logged delivered, and a request that
is unsigned, stale or tampered with gets a 400, never a traceback."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.factories import make_chat_model, make_session
from tests.support.servers import free_port
from tests.webhooks.test_delivery import register, settled

README = Path(__file__).parents[2] / "docs" / "runs.md"  # linked from the README
ADDRESS = '("0.0.0.0", 8081)'
QUESTION = {"role": "user", "content": "What is the answer?"}
EVENT = {
    "type": "run.completed",
    "timestamp": "2026-12-03T20:26:10.344522Z",
    "data": {"run_uuid": "0b4f5d52-6f0e-4a47-9a7c-3f1f3c2e8d10", "status": "succeeded"},
}
BODY = json.dumps(EVENT).encode()
ACCEPTED_LINE = "msg_test run.completed 0b4f5d52-6f0e-4a47-9a7c-3f1f3c2e8d10 succeeded"


def receiver_source(port: int) -> str:
    """The README's receiver, listening on 127.0.0.1:port instead of 0.0.0.0:8081."""
    section = README.read_text().split("**A receiver, standard library only.**", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert example.count(ADDRESS) == 1
    return example.replace(ADDRESS, f'("127.0.0.1", {port})')


@dataclass
class ReadmeReceiver:
    url: str
    stdout: str = ""
    stderr: str = ""
    printed: list[str] = field(default_factory=list)

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The receiver's status for this request (headers sent byte for byte, latin-1)."""
        sent = {name.encode(): value.encode("latin-1") for name, value in headers.items()}
        answer = httpx.post(self.url, content=body, headers=sent, timeout=5)
        return answer.status_code


@contextmanager
def readme_receiver(secret: str, port: int, folder: Path) -> Iterator[ReadmeReceiver]:
    """The receiver as ``python3 receiver.py``; on leaving, stopped, with what it wrote."""
    script = folder / "receiver.py"
    script.write_text(receiver_source(port))
    # Its stdout a pipe, as under a process manager: what it prints must be flushed by itself.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env=env | {"WEBHOOK_SECRET": secret},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    receiver = ReadmeReceiver(f"http://127.0.0.1:{port}/hooks")
    try:
        wait_listening(port, process)
        yield receiver
    finally:
        process.terminate()
        try:
            receiver.stdout, receiver.stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            receiver.stdout, receiver.stderr = process.communicate()
        receiver.printed = receiver.stdout.splitlines()


def wait_listening(port: int, process: subprocess.Popen[str], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, "the receiver exited before it listened"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the receiver never listened"
            time.sleep(0.05)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def signed(secret: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers for body, signed by the ``standardwebhooks`` package."""
    at = at or datetime.now(UTC)
    return {
        "webhook-id": "msg_test",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_test", at, body.decode()),
    }


@pytest.fixture
def secret() -> str:
    return new_secret()


async def test_a_delivery_from_the_server_is_accepted_and_logged_delivered(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    port = free_port()
    hook = await register(client, f"http://127.0.0.1:{port}/hooks", "run.completed")
    with readme_receiver(hook["secret"], port, tmp_path) as receiver:
        await make_chat_model(client, "assistant")
        session = await make_session(client, "assistant")
        ran = await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
        assert ran.status_code == 200, ran.text
        [delivery] = await settled(client, hook["id"])

    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        204,
    ), (delivery, receiver.stderr)
    run_uuid = ran.json()["detail"]["run_uuid"]
    assert receiver.printed == [f"{delivery['message_id']} run.completed {run_uuid} succeeded"]
    assert "Traceback" not in receiver.stderr


def test_a_request_signed_now_with_the_secret_is_accepted(secret: str, tmp_path: Path) -> None:
    with readme_receiver(secret, free_port(), tmp_path) as receiver:
        assert receiver.post(BODY, signed(secret, BODY)) == 204

    assert receiver.printed == [ACCEPTED_LINE]
    assert "Traceback" not in receiver.stderr, receiver.stderr


def tampered(secret: str) -> tuple[bytes, dict[str, str]]:
    return BODY.replace(b"succeeded", b"failed"), signed(secret, BODY)


def unsigned(secret: str) -> tuple[bytes, dict[str, str]]:
    return BODY, {}


def without_signature(secret: str) -> tuple[bytes, dict[str, str]]:
    headers = signed(secret, BODY)
    del headers["webhook-signature"]
    return BODY, headers


def stale(secret: str) -> tuple[bytes, dict[str, str]]:
    """Signed correctly, ten minutes ago: a replay."""
    return BODY, signed(secret, BODY, datetime.now(UTC) - timedelta(minutes=10))


def timestamp_not_a_number(secret: str) -> tuple[bytes, dict[str, str]]:
    return BODY, signed(secret, BODY) | {"webhook-timestamp": "soon"}


def signature_not_ascii(secret: str) -> tuple[bytes, dict[str, str]]:
    return BODY, signed(secret, BODY) | {"webhook-signature": "v1,caf\xe9"}


def signed_with_another_secret(secret: str) -> tuple[bytes, dict[str, str]]:
    return BODY, signed(new_secret(), BODY)


@pytest.mark.parametrize(
    "request_of",
    [
        tampered,
        unsigned,
        without_signature,
        stale,
        timestamp_not_a_number,
        signature_not_ascii,
        signed_with_another_secret,
    ],
)
def test_a_request_not_signed_now_with_the_secret_is_refused_without_a_traceback(
    secret: str, tmp_path: Path, request_of: Callable[[str], tuple[bytes, dict[str, str]]]
) -> None:
    body, headers = request_of(secret)
    with readme_receiver(secret, free_port(), tmp_path) as receiver:
        assert receiver.post(body, headers) == 400
        # The receiver goes on answering: a signed request after it is accepted.
        assert receiver.post(BODY, signed(secret, BODY)) == 204

    assert receiver.printed == [ACCEPTED_LINE]  # only the signed request was trusted
    assert "Traceback" not in receiver.stderr, receiver.stderr

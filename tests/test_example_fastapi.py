"""examples/fastapi_app.py, and its SQLAlchemy twin fastapi_sqlalchemy_app.py, served for real:
uvicorn in a child process on 127.0.0.1, a few thousand concurrent requests (reads and writes)
from httpx.AsyncClient, every answer checked, a graceful shutdown (SIGINT: the lifespan closes
the AsyncPool), then the final database checked with the stdlib sqlite3 module.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import GREENLET_UNUSABLE
from example_checks import check_answers, check_final_database, make_ops

import fastpool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to the server")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The child must import the same fastpool as this test (a checkout with PYTHONPATH=src, or
# the installed package).
FASTPOOL_ROOT = str(Path(fastpool.__file__).resolve().parent.parent)


class Server:
    """The example app under uvicorn in a child process, on a socket bound here."""

    def __init__(self, db: Path, readers: int, example: str = "fastapi_app.py") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [FASTPOOL_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env["PYTHONWARNINGS"] = "default"  # let ResourceWarnings show up in stderr
        # stderr goes to a file: a pipe read only at the end would block a server that says
        # more than the pipe holds, and the load would time out for that reason alone.
        self.stderr_path = db.with_name(db.name + ".server-stderr")
        self.stderr = open(self.stderr_path, "w")  # noqa: SIM115 (stop() closes it)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLES / example),
                "--db",
                str(db),
                "--fd",
                str(self.sock.fileno()),
                "--readers",
                str(readers),
            ],
            pass_fds=(self.sock.fileno(),),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            text=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the server exited with {self.proc.returncode}:\n{self.read_stderr()}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not answer /health in time")
            time.sleep(0.1)

    def read_stderr(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text()

    def stop(self) -> tuple[int, str]:
        """Graceful shutdown, as Ctrl-C does it; return (exit code, stderr)."""
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not shut down:\n{self.read_stderr()}") from None
        finally:
            self.stderr.close()
        return self.proc.returncode, self.stderr_path.read_text()


async def drive(url: str, concurrency: int = 16):
    """Send the load; check every answer; return what the database must now hold."""
    rng = random.Random(4321)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        gate = asyncio.Semaphore(concurrency)

        async def call(method, path, body=None):
            async with gate:
                resp = await client.request(method, path, json=body)
                return resp.status_code, resp.json()

        seeds = [(f"item-{i}", rng.randrange(0, 50)) for i in range(40)]
        created = await asyncio.gather(
            *(call("POST", "/items", {"name": n, "qty": q}) for n, q in seeds)
        )
        assert all(status == 201 for status, _ in created), created
        items = {body["id"]: (body["name"], body["qty"]) for _, body in created}
        assert len(items) == len(seeds) and sorted(items.values()) == sorted(seeds)
        ids = sorted(items)

        ops = make_ops(rng, ids, 3000)

        def request_for(op):
            kind, item_id, arg = op
            if kind in ("get", "missing"):
                return call("GET", f"/items/{item_id}")
            if kind == "list":
                return call("GET", "/items?limit=5")
            if kind == "add":
                return call("POST", f"/items/{item_id}/add", {"n": arg})
            if kind == "create":
                return call("POST", "/items", {"name": arg[0], "qty": arg[1]})
            return call("POST", f"/items/{item_id}/add", {"n": -1})

        answers = await asyncio.gather(*(request_for(op) for op in ops))
        stats_status, stats = await call("GET", "/stats")

    # FastAPI answers a negative increment with its validation error (n must be >= 1).
    added, new_items = check_answers(
        zip(ops, answers, strict=True), items, ids, error_field="detail", bad_status=422
    )

    assert stats_status == 200
    assert stats["timeouts"] == 0 and stats["readers_in_use"] == 0
    assert not stats["writer_busy"] and stats["closed"] is False
    return items, added, new_items


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "example",
    [
        "fastapi_app.py",
        pytest.param(
            "fastapi_sqlalchemy_app.py",
            marks=pytest.mark.skipif(bool(GREENLET_UNUSABLE), reason=GREENLET_UNUSABLE),
        ),
    ],
)
def test_fastapi_app_under_uvicorn(tmp_path, example):
    db = tmp_path / "inventory.db"
    server = Server(db, readers=4, example=example)
    try:
        server.wait_ready()
        items, added, new_items = asyncio.run(drive(server.url))
    except BaseException as exc:
        # A server that died mid-load says why on its stderr (and in its exit status).
        code, err = server.stop()
        raise AssertionError(f"{exc!r} from the server, which exited with {code}:\n{err}") from exc
    code, err = server.stop()
    assert code == 0, err
    assert "Traceback" not in err and "ResourceWarning" not in err, err

    check_final_database(db, items, added, new_items)

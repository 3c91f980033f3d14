"""The upload process: a second gateway process that takes the PUTs of a deploy's content.

Why: a first deploy is one PUT per file, and the gateway's event loop handles every one of
them (a new file, its link into the CAS, the HTTP): on the 10,000-file bench it was the
bottleneck, one core busy while the other waited (bench/deploy_dir.py). The uploads need no
database and no state but the CAS directory and the upload URLs' signing key, so they run in a
process of their own, on a port of their own, in parallel with the gateway.

The hosted API hands out presigned URLs of another host (S3) for the same PUTs, so a client
already follows whatever URL a content plan gives. The gateway gives the upload process's URL
only to a client that reached the gateway itself on loopback (deploy/content.py); through a
proxy or a tunnel, which may forward the gateway's port alone, and whenever the upload process
is not running, the URL is the gateway's own, where the same route still answers.

The process dies with the gateway (procs.dies_with_parent), binds 127.0.0.1 on a free port,
says which on its stdout, and logs to logs/uploads.log.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

from run402_cli.local.runtime import procs

__all__ = ["UploadProcess"]

log = logging.getLogger("run402.gateway")


class UploadProcess:
    """The upload process of one gateway: `start()`, `port` (None unless it runs and has said
    which), `stop()`. `start` does not wait for it (that was half a second of every `local up`):
    until it has said its port, content plans hand out the gateway's own URLs."""

    def __init__(self, cas_dir: str, log_path: Path) -> None:
        self.cas_dir, self.log_path = cas_dir, Path(log_path)
        self._proc: subprocess.Popen | None = None
        self._port: int | None = None
        self._said = b""
        self._lock = threading.Lock()  # content plans ask from worker threads

    @property
    def port(self) -> int | None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return None
            if self._port is None and proc.stdout is not None and not proc.stdout.closed:
                self._port = self._read_port(proc)
            return self._port

    def _read_port(self, proc: subprocess.Popen) -> int | None:
        """What the process has said so far, without waiting: its port once the line is whole."""
        assert proc.stdout is not None
        while select.select([proc.stdout], [], [], 0)[0]:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                break
            self._said += chunk
        if not self._said.endswith(b"\n"):
            if len(self._said) > 256:  # not what it says: no uploads there
                log.warning("upload process said %r: the gateway takes the uploads", self._said[:80])
                proc.stdout.close()
            return None
        try:
            port = int(json.loads(self._said)["port"])
        except (ValueError, KeyError, TypeError):
            log.warning("upload process said %r: the gateway takes the uploads", self._said[:80])
            proc.stdout.close()
            return None
        proc.stdout.close()
        log.info("upload process pid=%s port=%s", proc.pid, port)
        return port

    def start(self) -> bool:
        """Spawn it (not waiting); False (logged) if it could not even be spawned."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = subprocess.Popen(
                procs.dies_with_parent([sys.executable, "-m", "run402_cli.local.runtime.uploads",
                                        "--cas-dir", self.cas_dir]),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_fd, start_new_session=True)
        except OSError as exc:
            log.warning("upload process not started (%s): the gateway takes the uploads", exc)
            self._proc = None
            return False
        finally:
            os.close(log_fd)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; always reaps the child."""
        with self._lock:
            proc, self._proc, self._port = self._proc, None, None
        if proc is None:
            return
        procs.stop_child(proc, timeout)
        if proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()


def main(argv: list[str]) -> None:
    import argparse

    import uvicorn

    from run402_cli.local.app import build_upload_app

    parser = argparse.ArgumentParser(prog="run402-local-uploads")
    parser.add_argument("--cas-dir", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    os.write(1, json.dumps({"port": sock.getsockname()[1]}).encode() + b"\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # said all it has to say: the gateway's pipe ends here
    os.close(devnull)
    # proxy_headers off, as in the gateway (runtime/server.py): the peer is the client.
    server = uvicorn.Server(uvicorn.Config(build_upload_app(args.cas_dir), log_config=None, access_log=False,
                                           proxy_headers=False, timeout_graceful_shutdown=5))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])

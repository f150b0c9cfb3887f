"""The labeling page: a standard-library HTTP server over one pairs folder, for one local labeler.

``LabelApp`` is the page's logic without HTTP (what the state is, what an answer does), so it is tested without a
socket; ``make_server`` puts it behind a ``ThreadingHTTPServer``. Routes:

* ``GET /``: the page (``page.html``, package data: no CDN, no request leaves the machine, held by its CSP).
* ``GET /api/state``: game, counts, and the first unanswered pair with its clips' URLs and ids ``[seed, reset,
  start, length]`` (``null`` when none).
* ``GET /clip/<pair>/<left|right>``: a clip file named in ``pairs.json``, nothing else of the disk.
* ``POST /api/label``: ``{"pair", "answer", "left", "right"}`` (the clip ids the page showed), ``Content-Type:
  application/json``; written to ``labels.csv`` before the reply (``reward.labels.append_label``). A second
  answer to a pair changes nothing and says so; the reply carries the new state.

The folder is in the project's one preference format (``reward.clip_pairs``, ``reward.labels``), whoever made it:
``trex-bench label pairs`` over a demo set, or the online preference loop (``rl.preference_loop``) over the agent's
own games. ``pairs.json`` is read again whenever it changes on disk, so the loop's folder, which grows while PPO
runs, is served the same way: the page asks for the next pair and, when all are answered, polls for new ones.
A page on another site cannot post answers: it cannot send a JSON body without a CORS preflight, which this server
never grants, and a request naming another host (DNS rebinding) is refused on a loopback server.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.reward.clip_pairs import PAIRS_FILE, PairSet, read_pairs
from trex_bench.reward.labels import (
    ANSWERS,
    LABELS_FILE,
    Label,
    append_label,
    check_labeler,
    check_labels,
    read_labels,
)

__all__ = ["LabelApp", "find_pairs_folder", "make_server", "MAX_BODY"]

MAX_BODY = 4096  # bytes of a POST: an answer is ~100
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CSP = "default-src 'none'; img-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
log = logging.getLogger(__name__)


def find_pairs_folder(path: str | Path) -> Path:
    """``path`` itself when it holds ``pairs.json``, else the one folder below it that does (a run folder of the
    online loop).

    Raises:
        DataError: no such folder, none below it, or several (named).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; pass a pairs folder made by `trex-bench label pairs`")
    if (path / PAIRS_FILE).is_file():
        return path
    found = sorted(p.parent for p in path.glob(f"**/{PAIRS_FILE}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"{path} holds no {PAIRS_FILE}; make a pairs folder with `trex-bench label pairs`")
    raise DataError(f"{path} holds {len(found)} pairs folders ({', '.join(map(str, found[:4]))}); pass one of them")


class LabelApp:
    """The labeling page's state and answers over one pairs folder.

    Args:
        folder: the pairs folder (``pairs.json`` + clips; ``labels.csv`` is written here).
        labeler: the name written with every answer.
        clock: unix time of an answer (tests pass a fake).

    Raises:
        DataError: not a pairs folder, existing labels that name other pairs or clips, or a folder
            or labels file that cannot be written.
    """

    def __init__(self, folder: str | Path, labeler: str, clock: Any = time.time) -> None:
        self.folder = Path(folder)
        self.labels_path = self.folder / LABELS_FILE
        self.labeler = labeler
        self.clock = clock
        self._lock = threading.Lock()
        self._pairs: PairSet = read_pairs(self.folder)
        self._pairs_stamp = self._stamp()
        check_labeler(labeler)
        if self.labels_path.exists():
            check_labels(read_labels(self.labels_path), self._pairs, self.labels_path)
        self._check_writable()

    def _check_writable(self) -> None:
        target = self.labels_path if self.labels_path.exists() else self.folder
        if not os.access(target, os.W_OK) or not os.access(self.folder, os.W_OK):
            raise DataError(f"cannot write answers to {self.labels_path}: {target} is not writable")

    def _stamp(self) -> tuple[int, int]:
        st = (self.folder / PAIRS_FILE).stat()
        return (st.st_mtime_ns, st.st_size)

    def pairs(self) -> PairSet:
        """The pairs, read again when ``pairs.json`` changed on disk (the online loop adds pairs)."""
        with self._lock:
            try:
                stamp = self._stamp()
                if stamp != self._pairs_stamp:
                    self._pairs, self._pairs_stamp = read_pairs(self.folder), stamp
            except (OSError, DataError) as e:  # mid-replace or briefly missing: keep serving the last good file
                log.warning("keeping the pairs read before: %s", e)
            return self._pairs

    def state(self) -> dict[str, Any]:
        """What the page shows: counts and the first unanswered pair (``next`` is None when all are answered)."""
        pairs = self.pairs()
        answered = {lab.pair for lab in self._labels(pairs)}
        todo = next((i for i in range(len(pairs.pairs)) if i not in answered), None)
        nxt = None
        if todo is not None:
            p = pairs.pairs[todo]
            nxt = dict(
                pair=todo,
                left=dict(url=f"clip/{todo}/left", clip=list(p.left.as_tuple())),
                right=dict(url=f"clip/{todo}/right", clip=list(p.right.as_tuple())),
            )
        return dict(
            game=pairs.game,
            total=len(pairs.pairs),
            labelled=len(answered),
            labeler=self.labeler,
            labels=str(self.labels_path),
            next=nxt,
        )

    def _labels(self, pairs: PairSet) -> tuple[Label, ...]:
        if not self.labels_path.exists():
            return ()
        return read_labels(self.labels_path)

    def answer(self, body: Any) -> tuple[HTTPStatus, dict[str, Any]]:
        """Record one answer (the decoded JSON body). Returns the HTTP status and the reply's JSON.

        400: not an object of ``pair``, ``answer``, ``left``, ``right``, an unknown pair or answer; 409: the clips
        the page showed are not that pair's (``pairs.json`` changed under the page); 200: written, or the pair was
        answered already (``recorded`` false, the first answer stands).
        """
        keys = {"pair", "answer", "left", "right"}
        if not isinstance(body, dict) or set(body) != keys:
            got = sorted(body) if isinstance(body, dict) else type(body).__name__
            return HTTPStatus.BAD_REQUEST, dict(error=f"expected a JSON object with {sorted(keys)}, got {got}")
        pairs = self.pairs()
        i, answer = body["pair"], body["answer"]
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(pairs.pairs):
            return HTTPStatus.BAD_REQUEST, dict(error=f"no pair {i!r}: the pairs are 0 … {len(pairs.pairs) - 1}")
        if answer not in ANSWERS:
            return HTTPStatus.BAD_REQUEST, dict(error=f"answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
        p = pairs.pairs[i]
        if [body["left"], body["right"]] != [list(p.left.as_tuple()), list(p.right.as_tuple())]:
            return HTTPStatus.CONFLICT, dict(
                error=f"pair {i} has other clips than the page showed ({PAIRS_FILE} changed): reload the page"
            )
        label = Label(i, p.left, p.right, self.labeler, answer, float(self.clock()))
        stands, written = append_label(self.labels_path, label)
        if written:
            message = f"pair {i}: {answer} saved"
        else:
            message = f"pair {i} was answered already ({stands.answer}); the first answer stands, nothing changed"
        return HTTPStatus.OK, dict(recorded=written, answer=stands.answer, message=message, state=self.state())

    def clip(self, pair: int, side: str) -> Path | None:
        """The clip file of one side of a pair, if the pair exists and its file lies inside the folder."""
        pairs = self.pairs()
        if not 0 <= pair < len(pairs.pairs) or side not in ("left", "right"):
            return None
        p = pairs.pairs[pair]
        name = p.left_file if side == "left" else p.right_file
        if name is None:  # not rendered: nobody was to watch it (the synthetic oracle's queries)
            return None
        path = (self.folder / name).resolve()
        if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
            return None
        return path


class _Handler(BaseHTTPRequestHandler):
    """HTTP around a ``LabelApp`` (set on the server as ``server.app``)."""

    server: _LabelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: dict[str, Any]) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _host_ok(self) -> bool:
        """On a loopback server, only requests addressed to a loopback name (no DNS rebinding)."""
        if self.server.server_address[0] not in ("127.0.0.1", "::1"):
            return True
        host = self.headers.get("Host", "")
        name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
        return name in _LOOPBACK

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._json(HTTPStatus.FORBIDDEN, dict(error="this server answers only requests to 127.0.0.1"))
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        if path == "/favicon.ico":  # asked for by every browser; none here
            return self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        if path == "/api/state":
            try:
                return self._json(HTTPStatus.OK, self.server.app.state())
            except DataError as e:  # labels.csv edited into something unreadable while the page was open
                return self._json(HTTPStatus.INTERNAL_SERVER_ERROR, dict(error=str(e)))
        m = re.fullmatch(r"/clip/(\d{1,9})/(left|right)", path)
        clip = self.server.app.clip(int(m.group(1)), m.group(2)) if m else None
        if clip is None:
            return self._json(HTTPStatus.NOT_FOUND, dict(error=f"nothing at {path}"))
        kind = {".gif": "image/gif", ".webp": "image/webp", ".png": "image/png"}.get(
            clip.suffix, "application/octet-stream"
        )
        self._send(HTTPStatus.OK, clip.read_bytes(), kind, cache="no-cache")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not self._host_ok():
            return self._json(HTTPStatus.FORBIDDEN, dict(error="this server answers only requests to 127.0.0.1"))
        if self.path != "/api/label":
            return self._json(HTTPStatus.NOT_FOUND, dict(error=f"nothing to post to at {self.path}"))
        if self.headers.get_content_type() != "application/json":
            return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, dict(error="send the answer as application/json"))
        try:
            size = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._json(HTTPStatus.LENGTH_REQUIRED, dict(error="a Content-Length header is needed"))
        if not 0 <= size <= MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, dict(error=f"an answer is at most {MAX_BODY} bytes"))
        try:
            body = json.loads(self.rfile.read(size).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return self._json(HTTPStatus.BAD_REQUEST, dict(error=f"not JSON: {e}"))
        try:
            status, reply = self.server.app.answer(body)
        except DataError as e:  # the labels file became unusable (edited by hand, read-only, locked)
            return self._json(HTTPStatus.INTERNAL_SERVER_ERROR, dict(error=f"not saved: {e}"))
        self._json(status, reply)


class _LabelServer(ThreadingHTTPServer):
    daemon_threads = True
    app: LabelApp
    page: bytes

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that stops loading a clip (the next pair came) is no error; anything else is logged."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        log.exception("request from %s failed", client_address)


def make_server(app: LabelApp, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """The page's HTTP server on ``host:port`` (port 0: any free port; ``server.server_port`` says which), not yet
    serving: call ``serve_forever()``.

    Raises:
        ConfigError: the port is in use, or ``host`` is not an address of this machine.
    """
    try:
        server = _LabelServer((host, port), _Handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use; pass another --port (or --port 0 for any free one)"
            ) from e
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    server.app = app
    server.page = resources.files("trex_bench.label").joinpath("page.html").read_bytes()
    return server

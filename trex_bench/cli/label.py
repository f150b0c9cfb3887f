"""``trex-bench label pairs|serve``: clip pairs for a person to label, and the local page to label them on."""

from __future__ import annotations

import argparse
import getpass
import shlex
from pathlib import Path

from trex_bench.cli.util import positive_int, seed


def _port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    v = int(text)
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 … 65535, got {v}")
    return v


def _default_labeler() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "labeler"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="label pairs of clips yourself, on a local page",
        description="Make pairs of clips from a demo set, then label them on a local web page (two clips side by "
        "side; answer by click or key). The answers go to PAIRS/labels.csv, which `trex-bench reward train "
        "--ranking human --human-labels PAIRS/labels.csv` trains T-REX on. The page serves the online preference "
        "loop's queries the same way: `trex-bench label serve RUN` shows a person the agent's own clips while PPO "
        "waits (one format for both: docs/preferences.md).",
        epilog="Example: trex-bench label pairs breakout --demos demos/breakout/ppo-checkpoints --n 100 --out pairs "
        "&& trex-bench label serve pairs   (trex-bench label SUBCOMMAND --help)",
    )
    ls = p.add_subparsers(dest="label_command", metavar="SUBCOMMAND", required=True)

    c = ls.add_parser(
        "pairs",
        help="sample clip pairs from a demo set and render the clips",
        description="Cut the demo set's episodes into clips of --length observations, draw --n distinct pairs of "
        "them and render each clip once (a looping GIF of the 84×84 frames the reward net sees, from exact replay) "
        "into the pairs folder --out: pairs.json (game, demo set path and content hash, the pairs as clip ids (seed, "
        "reset index, start, length) of the set's episodes) and clips/.",
        epilog="Example: trex-bench label pairs breakout --demos demos/breakout/ppo-checkpoints --n 100 --seed 0 "
        "--out pairs-breakout",
    )
    c.add_argument("game", help="game id, e.g. breakout (see `trex-bench games`)")
    c.add_argument("--demos", type=Path, required=True, help="demo set folder")
    c.add_argument("--n", type=positive_int, required=True, help="number of pairs to label")
    c.add_argument("--out", type=Path, required=True, help="pairs folder to write (must not exist, or be empty)")
    c.add_argument("--seed", type=seed, default=0, help="seed of the pair draw (default 0)")
    c.add_argument(
        "--length", type=positive_int, default=25, help="observations per clip (default 25: Christiano et al.'s)"
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run_pairs)

    s = ls.add_parser(
        "serve",
        help="the labeling page on http://127.0.0.1:PORT/",
        description="Serve the labeling page of a pairs folder (or of the one pairs folder inside a run folder) "
        "until Ctrl-C. Each answer is written to PAIRS/labels.csv at once; reload or restart at any time and the "
        "page goes on at the first pair without an answer. Keys: ← left, → right, ↑ or = equal, ↓ or space "
        "can't tell.",
        epilog="Example: trex-bench label serve pairs-breakout --port 8000 --labeler alice",
    )
    s.add_argument("pairs", type=Path, metavar="PAIRS", help="pairs folder (from `label pairs`, or the online loop's)")
    s.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000; 0: any free one)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--labeler", default=None, help="name written with every answer (default: your user name)")
    s.set_defaults(func=run_serve)


def run_pairs(args: argparse.Namespace) -> int:
    import numpy as np

    from trex_bench.core.progress import progress_bar
    from trex_bench.label.clips import make_pairs

    bar = None

    def on_clip(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, "render clips", "clip", enabled=not args.no_progress)
        bar.update(1)

    try:
        pairs = make_pairs(
            args.game,
            args.demos,
            args.out,
            args.n,
            np.random.default_rng(args.seed),
            length=args.length,
            created_by=shlex.join(args.argv),
            on_clip=on_clip,
        )
    finally:
        if bar is not None:
            bar.close()
    n_clips = len({c for p in pairs.pairs for c in (p.left, p.right)})
    print(f"wrote {len(pairs.pairs)} pairs of {n_clips} clips ({args.length} observations each) to {args.out}")
    print(f"label them: trex-bench label serve {shlex.quote(str(args.out))}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from trex_bench.label.server import LabelApp, find_pairs_folder, make_server

    folder = find_pairs_folder(args.pairs)
    app = LabelApp(folder, args.labeler or _default_labeler())
    server = make_server(app, args.host, args.port)
    state = app.state()
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    print(f"labeling {state['total']} {state['game']} pairs of {folder} ({state['labelled']} labelled so far)")
    print(f"answers go to {app.labels_path}")
    print(
        f"open http://{shown}:{server.server_port}/   (Ctrl-C stops the server; every answer is already saved)",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    done = app.state()
    print(f"stopped: {done['labelled']} of {done['total']} pairs labelled in {app.labels_path}")
    return 0

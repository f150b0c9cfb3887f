"""The online loop's queries and who answers them: its pairs folder, the ``Labeler`` seam, the oracle and a person.

A query is a pair of ``pairs.json`` (``reward.clip_pairs``: two clip ids, left and right, and their GIFs) and its
answer a row of ``labels.csv`` (``reward.labels``): the project's one preference format, the same files a demo
set's pairs folder holds, so the labeling page (``trex-bench label serve RUN``) serves the loop's queries as it
serves any pairs folder. ``QueryFolder`` is that folder as the loop (``rl.preference_loop``) keeps it: it writes
``pairs.json`` and the clips; a labeler either appends its answers to ``labels.csv`` itself or leaves that to the page.

* ``SyntheticLabeler`` answers at once from the true score (Christiano et al. 2017 §3.1's synthetic oracle).
* ``HumanLabeler`` leaves the answering to a person on the page. The loop waits for the first batch (PPO's first
  update needs a trained reward; rl-teacher waits for its initial preferences the same way), polling
  ``labels.csv``; after ``timeout_seconds`` it pauses the run: ``LabelsPending`` says where to answer and to rerun
  with ``--resume``. Later queries never block PPO: answers are read whenever they arrive (at every rollout's end, or
  on resume), so none is lost, whether given while the run goes on, after it paused or after it was killed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from trex_bench.core.errors import ConfigError, DataError, LabelsPending
from trex_bench.reward.clip_pairs import PAIRS_FILE, ClipPair, PairSet, read_pairs, write_pairs
from trex_bench.reward.labels import LABELS_FILE, Label, append_labels, check_labeler, check_labels, read_labels
from trex_bench.reward.segments import ClipBank

__all__ = ["QueryFolder", "Labeler", "SyntheticLabeler", "HumanLabeler"]


class QueryFolder:
    """The online loop's pairs folder: the queries asked (``pairs.json``), their clips (``clips/``, ``bank``) and
    the answers (``labels.csv``, ``labels``).

    Raises:
        DataError: the folder holds pairs of a demo set or of another game than ``game``.
    """

    def __init__(self, folder: str | Path, game: str) -> None:
        self.folder, self.game = Path(folder), game
        self.labels = self.folder / LABELS_FILE
        self.bank = ClipBank(self.folder)
        self.queries: list[ClipPair] = []
        if (self.folder / PAIRS_FILE).exists():  # asked by an earlier run in this folder
            pairs, where = read_pairs(self.folder), self.folder / PAIRS_FILE
            if pairs.kind != "online":
                raise DataError(f"{where} holds pairs of a demo set, not the online loop's queries; use another folder")
            if pairs.game != game:
                raise DataError(f"{where} holds {pairs.game} queries, but this run plays {game}")
            self.queries = list(pairs.pairs)

    def pair_set(self) -> PairSet:
        """Every query asked so far, as ``pairs.json`` holds them."""
        return PairSet(self.game, {"kind": "online"}, tuple(self.queries), "trex_bench.rl.preference_loop")

    def add(self, new: list[ClipPair]) -> dict[int, ClipPair]:
        """Append queries (their clips already in ``bank``) and rewrite ``pairs.json``; the new ones by index."""
        first = len(self.queries)
        self.queries += new
        write_pairs(self.folder, self.pair_set())  # after the clips it names, before any answer to it
        return dict(enumerate(new, start=first))

    def answers(self) -> tuple[Label, ...]:
        """The answers in ``labels.csv`` (a pair's first), checked against the queries (DataError naming the file
        and the first row that names a pair never asked, or other clips than its pair's)."""
        if not self.labels.exists():
            return ()
        labels = read_labels(self.labels)
        check_labels(labels, self.pair_set(), self.labels)
        return labels

    def first_batch(self) -> set[int]:
        """The queries asked at the first round (from the untrained policy), which PPO's first update waits for."""
        return {i for i, q in enumerate(self.queries) if q.step == self.queries[0].step}


@runtime_checkable
class Labeler(Protocol):
    """Who answers queries. ``ask`` poses them; the answers arrive as rows of ``labels.csv`` (now or later).

    ``watches``: a person looks at the clips, so the loop renders each queried clip's GIF (once, when it asks).
    """

    name: str
    watches: bool

    def ask(self, queries: Mapping[int, ClipPair], clips: ClipBank, labels: Path) -> None:
        """Pose ``queries`` (pair index → pair; their clips' data are in ``clips``); ``labels``: the CSV."""
        ...

    def wait(self, pairs: set[int], labels: Path) -> None:
        """Return once every pair in ``pairs`` has an answer in ``labels``; raise ``LabelsPending`` to pause."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-able state a resumed run restores (e.g. a random generator)."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Restore what ``state`` returned."""
        ...


class SyntheticLabeler:
    """Christiano et al.'s synthetic oracle (§3.1): prefers the clip with the higher true game score (the sum of its
    unclipped rewards); equal scores are ``equal`` (footnote 4: the oracle "outputs indifference"). With
    ``label_noise`` p a strict preference is flipped with probability p, one draw per query.
    """

    watches = False

    def __init__(
        self, label_noise: float = 0.0, rng: np.random.Generator | None = None, name: str = "synthetic"
    ) -> None:
        if not 0 <= label_noise <= 1:
            raise DataError(f"label_noise must be in [0, 1], got {label_noise}")
        if label_noise > 0 and rng is None:
            raise DataError("a noisy synthetic labeler needs an rng")
        check_labeler(name)
        self.label_noise, self.rng, self.name = float(label_noise), rng, name

    def answer(self, score_left: float, score_right: float, u: float) -> str:
        """The answer for true scores (left, right) and a uniform draw ``u`` in [0, 1)."""
        if score_left == score_right:
            return "equal"
        better_right = score_right > score_left
        if u < self.label_noise:
            better_right = not better_right
        return "right" if better_right else "left"

    def ask(self, queries: Mapping[int, ClipPair], clips: ClipBank, labels: Path) -> None:  # noqa: D102
        draws = self.rng.random(len(queries)) if self.rng is not None else np.ones(len(queries))
        now = time.time()
        answers = [
            Label(
                i,
                q.left,
                q.right,
                self.name,
                self.answer(clips.get(q.left).true_return, clips.get(q.right).true_return, u),  # type: ignore[arg-type]
                now,
            )
            for (i, q), u in zip(queries.items(), draws, strict=True)
        ]
        if answers:
            append_labels(labels, answers)

    def wait(self, pairs: set[int], labels: Path) -> None:  # noqa: D102
        pass  # answered in ``ask``

    def state(self) -> dict[str, Any]:  # noqa: D102
        return {"rng": None if self.rng is None else self.rng.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:  # noqa: D102
        if self.rng is not None and state.get("rng") is not None:
            self.rng.bit_generator.state = state["rng"]


class HumanLabeler:
    """A person answers on the labeling page, which reads ``pairs.json`` and the GIFs and appends ``labels.csv``.

    ``ask`` writes nothing (the loop keeps ``pairs.json`` and the clips). ``wait`` polls ``labels.csv`` every
    ``poll_seconds`` until the pairs are answered (``skip`` counts: the person saw the pair); after
    ``timeout_seconds`` (None: no limit) it raises ``LabelsPending``, which pauses the run resumably.
    """

    watches = True

    def __init__(self, name: str = "human", poll_seconds: float = 2.0, timeout_seconds: float | None = None) -> None:
        check_labeler(name)
        if poll_seconds <= 0 or (timeout_seconds is not None and timeout_seconds < 0):
            raise ConfigError(
                f"poll_seconds must be > 0 and timeout_seconds >= 0, got {poll_seconds}, {timeout_seconds}"
            )
        self.name, self.poll_seconds, self.timeout_seconds = name, poll_seconds, timeout_seconds

    def ask(self, queries: Mapping[int, ClipPair], clips: ClipBank, labels: Path) -> None:  # noqa: D102
        pass  # the page shows every pair of pairs.json that has no answer yet

    def wait(self, pairs: set[int], labels: Path) -> None:  # noqa: D102
        t0 = time.monotonic()
        while True:
            missing = pairs - {lab.pair for lab in (read_labels(labels) if labels.exists() else ())}
            if not missing:
                return
            waited = time.monotonic() - t0
            if self.timeout_seconds is not None and waited >= self.timeout_seconds:
                folder = labels.parent
                raise LabelsPending(
                    f"paused: {len(missing)} of the {len(pairs)} queries the run waits for in {folder / PAIRS_FILE} "
                    f"have no answer after {waited:.0f} s; answer them with `trex-bench label serve {folder}`, then "
                    "run the same command again with --resume (the queries, clips and answers so far are kept)"
                )
            time.sleep(self.poll_seconds)

    def state(self) -> dict[str, Any]:  # noqa: D102
        return {}

    def restore(self, state: dict[str, Any]) -> None:  # noqa: D102
        pass

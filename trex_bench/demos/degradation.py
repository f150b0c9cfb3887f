"""The D-REX degradation curve: true return of a (cloned) demonstrator vs the ε of its ε-greedy noise.

D-REX (Brown et al. CoRL 2019) ranks rollouts by noise alone, which is only sound where return falls as ε rises;
this curve is the check. The CSV has the layout of the authors' released
``drex-atari/bc_degredation_data/<game>_batch_rewards.csv`` (copied in ``shared/reference/drex/bc_degradation``)::

    demos, r1, r2, …          returns of the demonstrations (optional: only when a demo set is given)
    ε, r1, r2, …              one row per noise level, returns of the rollouts at that ε

so ours and theirs load with one reader (``read_reference_degradation``) and plot on one figure.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from trex_bench.core.errors import ConfigError
from trex_bench.core.io import atomic_write, claim_output
from trex_bench.core.types import NOOP_NOISE, DemoSet

__all__ = [
    "degradation_curve",
    "degradation_rows",
    "write_degradation",
    "read_reference_degradation",
    "summarise_rows",
    "degradation_command",
]


def degradation_rows(demos: DemoSet) -> dict[float, list[float]]:
    """True returns per ε, ε in descending order (the reference files list ε ascending; the curve reads 1 → 0).

    The D-REX no-op bin (``NOOP_NOISE``) is not an ε and is left out.
    """
    rows: dict[float, list[float]] = {}
    for e in demos.episodes:
        if e.noise == NOOP_NOISE:
            continue
        rows.setdefault(float(e.noise), []).append(e.ret)
    return {k: rows[k] for k in sorted(rows, reverse=True)}


def summarise_rows(rows: dict[float, list[float]]) -> pd.DataFrame:
    """Columns ``noise, mean, std, n`` (std is the population std, ddof=0, as numpy's default) per ε, descending."""
    recs = [dict(noise=k, mean=float(np.mean(v)), std=float(np.std(v)), n=len(v)) for k, v in rows.items()]
    return pd.DataFrame(recs, columns=["noise", "mean", "std", "n"]).sort_values(
        "noise", ascending=False, ignore_index=True
    )


def degradation_curve(demos: DemoSet) -> pd.DataFrame:
    """Per ε of the episodes of ``demos``: mean, std and number of true returns, ε sorted descending."""
    return summarise_rows(degradation_rows(demos))


def _csv_text(rows: dict[float, list[float]], demo_returns: list[float] | None) -> str:
    buf = io.StringIO()
    lines = []
    if demo_returns is not None:
        lines.append(["demos", *(f"{r!r}" for r in map(float, demo_returns))])
    for eps in sorted(rows):  # ascending, as the reference files
        lines.append([repr(float(eps)), *(repr(float(r)) for r in rows[eps])])
    for line in lines:
        buf.write(", ".join(line) + "\n")  # the reference files separate with ", "
    return buf.getvalue()


def read_reference_degradation(csv_path: str | Path) -> tuple[np.ndarray | None, dict[float, np.ndarray]]:
    """Parse a ``<game>_batch_rewards.csv`` (the authors' or ours).

    Returns:
        ``(demo_returns or None, {ε: returns})``; ε keys rounded to 10 decimals (the released files print
        accumulated float steps such as ``0.15000000000000002``).

    Raises:
        ValueError: a row that is not ``label, number, …`` (a NaN or infinite return included), or no noise rows
            (message names the file and line).
    """
    path = Path(csv_path)
    demos: np.ndarray | None = None
    levels: dict[float, np.ndarray] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 CSV ({e})") from e
    with io.StringIO(text, newline="") as f:
        for n, row in enumerate(csv.reader(f, skipinitialspace=True), start=1):
            row = [c.strip() for c in row if c.strip()]
            if not row:
                continue
            try:
                values = np.array([float(c) for c in row[1:]], dtype=np.float64)
                if not np.isfinite(values).all():
                    raise ConfigError(
                        f"a return that is not a finite number ({row[1 + int(np.argmin(np.isfinite(values)))]})"
                    )
                if row[0].lower() == "demos":
                    demos = values
                else:
                    eps = round(float(row[0]), 10)
                    if not 0.0 <= eps <= 1.0:
                        raise ConfigError(f"noise {eps} outside [0, 1]")
                    levels[eps] = values
            except ValueError as e:
                raise ConfigError(f"{path}:{n}: not a degradation row ({e})") from e
    if not levels:
        raise ConfigError(f"{path}: no noise rows")
    return demos, levels


def _plot(
    curve: pd.DataFrame, title: str, out_png: Path, reference: Path | None, demo_returns: list[float] | None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(curve["noise"], curve["mean"], yerr=curve["std"], marker="o", capsize=3, label="this run (mean ± std)")
    if demo_returns is not None:
        ax.axhline(float(np.mean(demo_returns)), color="C0", ls=":", label="demos (mean)")
    if reference is not None:
        ref_demos, ref = read_reference_degradation(reference)
        ref_curve = summarise_rows({k: list(v) for k, v in ref.items()})
        ax.errorbar(
            ref_curve["noise"],
            ref_curve["mean"],
            yerr=ref_curve["std"],
            marker="s",
            capsize=3,
            color="C1",
            alpha=0.7,
            label="D-REX released BC (mean ± std)",
        )
        if ref_demos is not None:
            ax.axhline(float(ref_demos.mean()), color="C1", ls=":", label="D-REX demos (mean)")
    ax.set_xlabel("ε (ε-greedy noise)")
    ax.set_ylabel("true return")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(out_png, lambda p: fig.savefig(p, format="png", dpi=120), suffix=".png")
    plt.close(fig)


def write_degradation(
    demos: DemoSet, out_prefix: str | Path, demo_set: DemoSet | None = None, reference_csv: str | Path | None = None
) -> tuple[Path, Path]:
    """Write ``<prefix>.csv`` (reference layout) and ``<prefix>.png`` (mean ± std of return vs ε), atomically.

    Args:
        demos: the noise rollouts, each episode tagged with its ε.
        out_prefix: path without suffix.
        demo_set: the demonstrations the clone was trained on; their returns make the ``demos`` row. Without it
            the row is left out (the reader then returns None for it).
        reference_csv: an authors' ``<game>_batch_rewards.csv`` to overlay on the plot.

    Returns:
        ``(csv_path, png_path)``.

    Raises:
        ValueError: a demo set of another game, a bad reference, or ``<prefix>.csv``/``.png`` holding another kind
            of file (a leaderboard, a CSV or picture this did not write: ``core.io.claim_output``); nothing is
            written.
    """
    if demo_set is not None and demo_set.game != demos.game:
        raise ConfigError(f"demo set is of {demo_set.game}, the noise rollouts of {demos.game}")
    if reference_csv is not None:  # validate every input before the first file is written
        if not Path(reference_csv).is_file():
            raise ConfigError(f"reference {reference_csv} is not a file")
        read_reference_degradation(reference_csv)
    prefix = Path(out_prefix)
    csv_path, png_path = prefix.with_name(prefix.name + ".csv"), prefix.with_name(prefix.name + ".png")
    claim_output(csv_path, "degradation")  # never over a leaderboard or any CSV this did not write
    claim_output(png_path, "plot")
    rows = degradation_rows(demos)
    demo_returns = demo_set.returns.tolist() if demo_set is not None else None
    text = _csv_text(rows, demo_returns)
    atomic_write(csv_path, lambda p: p.write_text(text), suffix=".csv")
    _plot(
        degradation_curve(demos),
        f"{demos.game}: true return vs ε-greedy noise",
        png_path,
        Path(reference_csv) if reference_csv is not None else None,
        demo_returns,
    )
    return csv_path, png_path


def degradation_command(
    demos_dir: str | Path,
    out_prefix: str | Path,
    reference_csv: str | Path | None = None,
    demo_set_dir: str | Path | None = None,
) -> list[str]:
    """``demos degradation``: load the noise rollouts in ``demos_dir``, write the CSV + PNG; returns the lines that
    report the curve and where it was written (the CLI prints them)."""
    from trex_bench.demos.store import load_demos

    ds = load_demos(demos_dir)
    base = load_demos(demo_set_dir, game=ds.game) if demo_set_dir is not None else None
    csv_path, png_path = write_degradation(ds, out_prefix, base, reference_csv)
    curve = degradation_curve(ds)
    lines = [f"{ds.game}: true return vs ε ({len(ds.episodes)} episodes)"]
    lines += [f"  ε {r.noise:5.2f}  return {r.mean:9.2f} ± {r.std:7.2f}  (n={r.n})" for r in curve.itertuples()]
    if len(curve) < 2:
        lines.append("  note: one noise level only; nothing to rank by noise")
    return [*lines, f"wrote {csv_path} and {png_path}"]

"""Draw the figures of a result file into a directory, with an ``index.md`` of captions.

``immunosim plot RESULT -o DIR`` calls :func:`plot_result`. By default every figure the result
supports is drawn and the others are listed as skipped in ``index.md``; figures asked for by name
must be drawable, or a one-line :class:`PlotError` says what is missing.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import xarray as xr

from . import abm, bistability, maps, survival, timecourse, waterfall
from ._data import FigureSpec, PlotError, open_result, pool_replicates
from ._select import parse_select, resolve_select, select_subgroup
from ._style import DPI

__all__ = ["FIGURES", "FORMATS", "PlotError", "draw_figures", "plot_result", "write_png"]

#: Figure families by name, in drawing order. Each module has ``check(ds)`` (raises PlotError
#: when the result lacks what it needs) and ``figures(ds, **options) -> list[FigureSpec]``.
FIGURES = {
    "timecourse": timecourse,
    "dose_timing_map": maps,
    "survival": survival,
    "waterfall": waterfall,
    "bistability": bistability,
    "abm": abm,
}
#: Families drawn from the replicates themselves; the others see an agent-based result with
#: its replicates folded into the patients (:func:`~._data.pool_replicates`).
_REPLICATE_AWARE = {"abm"}
FORMATS = ("png", "svg", "pdf")
#: PNGs are written with a palette of this many colours: the figures are flat colours plus
#: anti-aliasing, so this is visually lossless and about 3x smaller than RGBA.
PNG_COLORS = 256
#: File metadata without creation dates, so the same result gives byte-identical SVG and PDF.
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}


def _check_choice(key: str, what: str, given: Sequence[str] | str,
                  valid: Sequence[str]) -> list[str]:
    """Deduplicated ``given`` (a string or a list); a one-line PlotError if empty or unknown."""
    items = list(dict.fromkeys([given] if isinstance(given, str) else given))
    if not items:
        raise PlotError(f"{key}: no {what} given; valid: {', '.join(valid)}")
    bad = [x for x in items if x not in valid]
    if bad:
        raise PlotError(f"{key}: unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
    return items


def _check_names(figures: Sequence[str] | None) -> list[str]:
    return list(FIGURES) if figures is None else _check_choice("figures", "name", figures,
                                                                list(FIGURES))


def _check_formats(formats: Sequence[str]) -> list[str]:
    formats = [formats] if isinstance(formats, str) else formats
    return _check_choice("formats", "format", [f.lower().lstrip(".") for f in formats], FORMATS)


def draw_figures(ds: xr.Dataset, figures: Sequence[str] | None = None, *,
                 options: Mapping[str, Mapping] | None = None,
                 select: Mapping[str, object] | Sequence[str] | None = None,
                 subgroup: str | Sequence[str] | None = None
                 ) -> tuple[list[tuple[str, FigureSpec]], dict[str, str]]:
    """Draw figure families from a result Dataset (nothing is written).

    Parameters
    ----------
    figures : list of str, optional
        Names from :data:`FIGURES`; default all that ``ds`` supports (the others are skipped).
    options : mapping, optional
        Keyword options per family, e.g. ``{"waterfall": {"landmark": 183},
        "dose_timing_map": {"select": {"interval": 90}}, "timecourse": {"vary": "n_infusions"}}``.
    select : mapping or list of str, optional
        Values at which every figure holds these dimensions, ``{"amount": 1e6}`` or
        ``["amount=1e6"]`` (nearest value within 5% for floats, exact for names and integers);
        a family's own ``options[...]["select"]`` wins for the dimensions it names. Checked
        before anything is drawn.
    subgroup : str or list of str, optional
        Patient conditions (``"activation_rate>q75"``; combined with AND): every figure is
        drawn from those patients only and says so, with their number, in its title
        (:func:`~immunosim.plotting._select.select_subgroup`).

    Returns
    -------
    drawn : list of (family name, FigureSpec)
    skipped : dict of family name -> reason (default selection only)
    """
    requested = figures is not None
    names = _check_names(figures)
    options = {n: dict(kw) for n, kw in (options or {}).items()}
    held = resolve_select(ds, parse_select(select))
    ds = select_subgroup(ds, subgroup)
    unknown = set(options) - set(FIGURES)
    if unknown:
        raise PlotError(f"options: unknown figure {sorted(unknown)[0]!r}; valid: "
                        f"{', '.join(FIGURES)}")
    for n, kw in options.items():
        valid = [k for k in inspect.signature(FIGURES[n].figures).parameters if k != "ds"]
        bad = [k for k in kw if k not in valid]
        if bad:
            raise PlotError(f"options[{n!r}]: unknown option {bad[0]!r}; valid: "
                            f"{', '.join(valid)}")
    for n in names:
        if held and "select" in inspect.signature(FIGURES[n].figures).parameters:
            own = options.setdefault(n, {})
            own["select"] = {**held, **dict(own.get("select") or {})}
    pooled = pool_replicates(ds)
    view = {n: ds if n in _REPLICATE_AWARE else pooled for n in names}
    if requested:  # every requested figure must be drawable: check all before drawing any
        for n in names:
            FIGURES[n].check(view[n])
    drawn, skipped = [], {}
    for n in names:
        try:
            if not requested:
                FIGURES[n].check(view[n])
            specs = FIGURES[n].figures(view[n], **dict(options.get(n, {})))
        except PlotError as e:
            if requested:
                raise
            skipped[n] = str(e)
            continue
        drawn += [(n, s) for s in specs]
    return drawn, skipped


def write_png(fig, path: str | Path, dpi: float = DPI, colors: int = PNG_COLORS) -> None:
    """Write ``fig`` as a palette PNG of at most ``colors`` colours (Pillow median cut, no
    dithering); deterministic for a given figure."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as im:
        rgb = im.convert("RGB")  # figures have an opaque white background
    pal = rgb.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(path, format="PNG", optimize=True)


def _index(drawn, written: dict[str, list[Path]], skipped: dict[str, str], source: str,
           ds: xr.Dataset) -> str:
    from .. import __version__

    title = ds.attrs.get("title", "immunosim result")
    lines = [f"# Figures: {title}", "",
             f"Drawn from `{source}` by immunosim {__version__} (`immunosim plot`).", ""]
    for family, spec in drawn:
        files = ", ".join(f"[`{p.name}`]({p.name})" for p in written[spec.stem])
        lines += [f"## {spec.stem}", "", f"- figure: `{family}`; files: {files}",
                  f"- from: `{source}`", f"- caption: {spec.caption}", ""]
        png = next((p for p in written[spec.stem] if p.suffix in (".png", ".svg")), None)
        if png is not None:
            lines += [f"![{spec.stem}]({png.name})", ""]
    if skipped:
        lines += ["## Skipped", ""]
        lines += [f"- `{n}`: {reason}" for n, reason in skipped.items()]
        lines.append("")
    return "\n".join(lines)


def plot_result(result: str | Path | xr.Dataset, out_dir: str | Path,
                figures: Sequence[str] | None = None, formats: Sequence[str] = ("png", "svg"),
                *, dpi: float = DPI, options: Mapping[str, Mapping] | None = None,
                select: Mapping[str, object] | Sequence[str] | None = None,
                subgroup: str | Sequence[str] | None = None) -> list[Path]:
    """Draw figures of a result into ``out_dir``, one file per figure and format, plus
    ``index.md`` (each file with its caption and the result it was drawn from).

    Parameters
    ----------
    result : path or Dataset
        A sweep result (``.zarr`` or ``.nc``), an :func:`immunosim.simulate` result saved as
        NetCDF, or a Dataset in memory.
    out_dir : path
        Created if missing; existing figures of the same names are replaced.
    figures : list of str, optional
        Names from :data:`FIGURES`; default every figure the result supports.
    formats : list of str
        Any of ``png``, ``svg``, ``pdf``.
    dpi : float
        Resolution of raster output.
    options : mapping, optional
        Per-figure keyword options (see :func:`draw_figures`).
    select, subgroup : optional
        Held values for every figure and a patient subgroup (see :func:`draw_figures`).

    Returns
    -------
    list of Path
        The files written, figures first, ``index.md`` last.

    Raises
    ------
    PlotError
        Missing or unreadable result, unknown figure or format, or (for named figures) a result
        without the variables a figure needs; the message is one line.
    """
    _check_names(figures)
    fmts = _check_formats(formats)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PlotError(f"{out}: exists and is not a directory")
    ds, source = open_result(result)
    try:
        drawn, skipped = draw_figures(ds, figures, options=options, select=select,
                                      subgroup=subgroup)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, list[Path]] = {}
        for _, spec in drawn:
            for f in fmts:
                path = out / f"{spec.stem}.{f}"
                if f == "png":
                    write_png(spec.figure, path, dpi)
                else:
                    spec.figure.savefig(path, dpi=dpi, metadata=_METADATA[f])
                written.setdefault(spec.stem, []).append(path)
        index = out / "index.md"
        index.write_text(_index(drawn, written, skipped, source, ds))
    finally:
        if not isinstance(result, xr.Dataset):
            ds.close()
    return [p for paths in written.values() for p in paths] + [index]

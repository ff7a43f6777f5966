"""Remake ``enclosed-alphanumerics.woff2``: the circled digits BIN writes (⓪ U+24EA, ① U+2460 and the
rest of the Enclosed Alphanumerics block, U+2460–U+24FF) for the page ``realm tui --serve`` gives a browser.

The page's font, Roboto Mono, lacks the block; DejaVu Sans has only ①–⑩ of it (no ⓪), Noto Sans Symbols
has all of it. The glyphs are scaled into Roboto Mono's cell (0.6 em wide) because the terminal
gives each of them one cell. Licence: SIL OFL 1.1 (OFL.txt beside this file).

    pip install fonttools brotli   # brotli: the woff2 encoder
    apt-get install fonts-noto-core   # or pass the path of any NotoSansSymbols-Regular.ttf
    python assets/fonts/build.py [/usr/share/fonts/truetype/noto/NotoSansSymbols-Regular.ttf]
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.boundsPen import BoundsPen
from fontTools.pens.transformPen import TransformPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont

SOURCE = Path("/usr/share/fonts/truetype/noto/NotoSansSymbols-Regular.ttf")
TARGET = Path(__file__).resolve().with_name("enclosed-alphanumerics.woff2")
BLOCK = range(0x2460, 0x2500)
CELL_EM = 0.6  # Roboto Mono's advance width (1229 of 2048 units)
TALL = 1.4  # drawn taller than wide: a circle fitted to the cell is ~9 px at 16 px text, too small to tell ⓪ from ①
FAMILY = "Realm Enclosed Alphanumerics"  # a modified font takes a name of its own (OFL)


def subset_block(source: Path) -> TTFont:
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = []
    options.hinting = False  # the outlines are rescaled below; the source hints would not fit them
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # the copyright, licence and version stay with it
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=BLOCK)
    subsetter.subset(font)
    return font


def fit_to_cell(font: TTFont) -> None:
    """Scale each glyph to fit CELL_EM wide (and up to TALL times that tall), centred in the cell and
    about its old vertical centre."""
    cell = round(CELL_EM * font["head"].unitsPerEm)
    glyphs, outlines = font["glyf"], font.getGlyphSet()
    for name in font.getGlyphOrder():
        bounds = BoundsPen(outlines)
        outlines[name].draw(bounds)
        if bounds.bounds is None:
            font["hmtx"][name] = (cell, 0)
            continue
        x0, y0, x1, y1 = bounds.bounds
        scale = min(1.0, cell * 0.95 / (x1 - x0))
        dx = (cell - (x1 - x0) * scale) / 2 - x0 * scale
        tall = min(1.0, scale * TALL)
        dy = (y0 + y1) / 2 * (1 - tall)
        pen = TTGlyphPen(outlines)
        outlines[name].draw(TransformPen(pen, (scale, 0, 0, tall, dx, dy)))
        glyphs[name] = pen.glyph()
        glyphs[name].recalcBounds(glyphs)
        font["hmtx"][name] = (cell, glyphs[name].xMin)


def rename(font: TTFont) -> None:
    names = font["name"]
    for record in list(names.names):
        if record.nameID in (1, 3, 4, 6, 16, 17):
            names.removeNames(nameID=record.nameID)
    names.setName(FAMILY, 1, 3, 1, 0x409)
    names.setName(FAMILY, 4, 3, 1, 0x409)
    names.setName(FAMILY.replace(" ", ""), 6, 3, 1, 0x409)
    names.setName(FAMILY.replace(" ", "") + "-Regular", 3, 3, 1, 0x409)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else SOURCE
    font = subset_block(source)
    fit_to_cell(font)
    rename(font)
    font.flavor = "woff2"
    font.save(TARGET)
    print(f"{TARGET}: {len(font.getBestCmap())} code points, {TARGET.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

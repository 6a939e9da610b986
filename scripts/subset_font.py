"""Cut the CJK font the figures use from Debian's Noto Sans CJK (fonts-noto-cjk).

    python scripts/subset_font.py   # rewrites snippets/fonts/NotoSansCJKsc-Regular-subset.otf

Kept: GB2312 rows 1-55 (symbols and the 3 755 level-1 hanzi), CJK punctuation, full-width
forms, ASCII and a few math signs. A Chinese figure that needs a glyph outside this set
fails its test (snippets.common.save_figure turns matplotlib's missing-glyph warning into
an error); add the characters to EXTRA and run this again.
"""

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

SOURCE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
TARGET = Path(__file__).resolve().parent.parent / "snippets/fonts"
EXTRA = "·—–‘’“”…×÷±≈≤≥→←°"


def characters() -> str:
    chars = set(EXTRA) | {chr(c) for c in range(0x20, 0x7F)}
    chars |= {chr(c) for c in range(0x3000, 0x3040)} | {chr(c) for c in range(0xFF00, 0xFF70)}
    for b1 in range(0xA1, 0xD8):
        for b2 in range(0xA1, 0xFF):
            try:
                chars.add(bytes([b1, b2]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return "".join(sorted(chars))


def main() -> None:
    fonts = TTCollection(SOURCE).fonts
    number = next(
        i for i, f in enumerate(fonts) if f["name"].getDebugName(1) == "Noto Sans CJK SC"
    )
    options = subset.Options()
    options.font_number, options.name_IDs = number, ["*"]
    options.layout_features, options.hinting = [], False
    font = subset.load_font(SOURCE, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters())
    subsetter.subset(font)
    subset.save_font(font, str(TARGET / "NotoSansCJKsc-Regular-subset.otf"), options)


if __name__ == "__main__":
    main()

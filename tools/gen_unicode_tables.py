#!/usr/bin/env python3
"""Generates the Unicode class table of deepseek.h's tokenizer (the block between the
'unicode-table:begin' and 'unicode-table:end' markers in deepseek.h) from the Unicode Character
Database as packaged by `unicodedata2`.

Hugging Face `tokenizers` 0.23 answers the split patterns' classes from its regex engine, which
has Unicode 16.0, and the Digits pre-tokenizer from Rust's char::is_numeric, which has Unicode
17.0. So: L letter, N number, M mark, P punctuation, S symbol from Unicode 16.0.0; W for the
White_Space property (what the patterns' \\s matches, unchanged since 6.3); R for "number" in
Unicode 17.0.0 (Rust's is_numeric). The table is a list of runs: (first code point << 8) | mask,
one entry where the mask changes.

The NFC normalizer of `tokenizers` (the unicode-normalization-alignments crate) has Unicode 9.0
data, so the NFC tables (canonical decompositions, combining classes) are Unicode 9.0.0's, read
from the tables CPython's makeunicodedata.py generated for unicodedata2 9.0.0 (its source
distribution's unicodedata2/py3/unicodedata_db.h); which two-part decompositions are primary
composites comes from the composition exclusions, stable once a character is encoded.

setup:  pip install unicodedata2==16.0.0
        pip install --target build/ucd17 unicodedata2==17.0.0              (or --ucd17 DIR)
        pip download --no-deps --no-binary :all: unicodedata2==9.0.0.post4, and copy
        unicodedata2/py3/unicodedata_db.h from it to build/ucd9/            (or --ucd9 FILE)
usage:  python3 tools/gen_unicode_tables.py [--check] [--ucd17 DIR] [--ucd9 FILE]
"""
import os
import re
import subprocess
import sys

try:
    import unicodedata2 as ud
except ImportError:
    sys.exit("gen_unicode_tables: needs `pip install unicodedata2==16.0.0`")

VERSION = "16.0.0"
if ud.unidata_version != VERSION:
    sys.exit(f"gen_unicode_tables: unicodedata2 has Unicode {ud.unidata_version}, want {VERSION}")

L, N, M, P, S, W, R = 1, 2, 4, 8, 16, 32, 64
CAT = {"L": L, "N": N, "M": M, "P": P, "S": S}
# PropList.txt White_Space (unchanged since Unicode 6.3)
WHITE = set(range(0x9, 0xE)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} \
    | set(range(0x2000, 0x200B))


def rust_numeric(ucd17):
    """code points of general category N in Unicode 17.0.0, from a second unicodedata2"""
    code = ("import unicodedata2 as u; assert u.unidata_version == '17.0.0', u.unidata_version;"
            "print(' '.join(str(c) for c in range(0x110000) if u.category(chr(c))[0] == 'N'))")
    env = dict(os.environ, PYTHONPATH=ucd17)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"gen_unicode_tables: needs unicodedata2 17.0.0 in {ucd17} (pip install --target {ucd17} unicodedata2==17.0.0)")
    return {int(x) for x in r.stdout.split()}


def mask(cp, rn):
    m = CAT.get(ud.category(chr(cp))[0], 0)
    return m | (W if cp in WHITE else 0) | (R if cp in rn else 0)


def runs(rn):
    out, prev = [], None
    for cp in range(0x110000):
        m = mask(cp, rn)
        if m != prev:
            out.append((cp << 8) | m)
            prev = m
    return out


def ucd9_tables(path):
    """(combining class, canonical decomposition) lookups from a CPython unicodedata_db.h"""
    src = open(path, encoding="utf-8").read()
    if '#define UNIDATA_VERSION "9.0.0"' not in src:
        sys.exit(f"gen_unicode_tables: {path} is not the Unicode 9.0.0 database")

    def arr(name):
        m = re.search(r"\b" + name + r"\[\]\s*=\s*\{(.*?)\};", src, re.S)
        return [int(x, 0) for x in re.findall(r"\b(?:0x[0-9a-fA-F]+|\d+)\b", m.group(1))]

    body = re.search(r"_PyUnicode_Database_Records\[\]\s*=\s*\{(.*?)\};", src, re.S).group(1)
    recs = [tuple(int(x) for x in r.split(",")) for r in re.findall(r"\{([^{}]*)\}", body)]
    index1, index2, shift = arr("index1"), arr("index2"), int(re.search(r"#define SHIFT (\d+)", src).group(1))
    di1, di2, dd = arr("decomp_index1"), arr("decomp_index2"), arr("decomp_data")
    dshift = int(re.search(r"#define DECOMP_SHIFT (\d+)", src).group(1))

    def ccc(c):
        i = index1[c >> shift]
        return recs[index2[(i << shift) + (c & ((1 << shift) - 1))]][1]

    def decomp(c):
        i = di1[c >> dshift]
        i = di2[(i << dshift) + (c & ((1 << dshift) - 1))]
        count, prefix = dd[i] >> 8, dd[i] & 255
        return dd[i + 1:i + 1 + count] if count and prefix == 0 else None
    return ccc, decomp


def nfc_tables(ucd9):
    """canonical decompositions of Unicode 9.0 (Hangul syllables excluded: they are computed)
    as (code point, first, second | 1 << 31 when it is a primary composite), and runs of
    (first code point << 8) | canonical combining class"""
    ccc_of, decomp = ucd9_tables(ucd9)
    dec = []
    for c in range(0x110000):
        parts = None if 0xAC00 <= c <= 0xD7A3 else decomp(c)
        if not parts:
            continue
        primary = len(parts) == 2 and ud.normalize("NFC", "".join(map(chr, parts))) == chr(c)
        dec.append((c, parts[0], (parts[1] if len(parts) == 2 else 0) | (1 << 31 if primary else 0)))
    ccc, prev = [], None
    for c in range(0x110000):
        v = ccc_of(c)
        if v != prev:
            ccc.append((c << 8) | v)
            prev = v
    return dec, ccc


def array(name, values, ctype="uint32_t"):
    lines = [f"static const {ctype} {name}[{len(values)}] = {{"]
    row = ""
    for v in values:
        item = f"0x{v:x},"
        if len(row) + len(item) > 99:
            lines.append(row.rstrip())
            row = ""
        row += item
    lines.append(row.rstrip())
    lines.append("};")
    return lines


def render(r, ucd9):
    lines = [f"/* generated by tools/gen_unicode_tables.py from the Unicode {VERSION} Character Database (and",
             "   17.0.0 for DS__UC_R): runs of (first code point << 8) | class mask, see DS__UC_* */",
             f"#define DS__UC_VERSION \"{VERSION}\""]
    lines += array("ds__uc_runs", r)
    dec, ccc = nfc_tables(ucd9)
    lines.append("/* NFC, Unicode 9.0.0 as the reference's normalizer has it: canonical decompositions (code point,")
    lines.append("   first, second | 1 << 31 for a primary composite; Hangul syllables are computed), and runs of")
    lines.append("   (first code point << 8) | canonical combining class */")
    lines += array("ds__uc_decomp", [x for t in dec for x in t])
    lines += array("ds__uc_ccc", ccc)
    return "\n".join(lines) + "\n"


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    ucd17 = sys.argv[sys.argv.index("--ucd17") + 1] if "--ucd17" in sys.argv else os.path.join(root, "build", "ucd17")
    ucd9 = sys.argv[sys.argv.index("--ucd9") + 1] if "--ucd9" in sys.argv else os.path.join(root, "build", "ucd9", "unicodedata_db.h")
    if not os.path.exists(ucd9):
        sys.exit(f"gen_unicode_tables: {ucd9} is missing (see the setup in this script's doc)")
    r = runs(rust_numeric(ucd17))
    path = os.path.join(root, "deepseek.h")
    src = open(path, encoding="utf-8").read()
    begin, end = "// unicode-table:begin\n", "// unicode-table:end\n"
    i, j = src.index(begin) + len(begin), src.index(end)
    new = src[:i] + render(r, ucd9) + src[j:]
    if "--check" in sys.argv:
        print("up to date" if new == src else "STALE")
        sys.exit(0 if new == src else 1)
    open(path, "w", encoding="utf-8").write(new)
    print(f"deepseek.h: {len(r)} runs of Unicode {VERSION}")


if __name__ == "__main__":
    main()

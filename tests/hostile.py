"""A corpus of hostile values, sent by the tests as options, names and free text: shell
metacharacters and command substitutions that would create a canary file, newlines, template
syntax (Jinja and others), #SBATCH lines, huge, negative and odd numbers, Unicode look-alikes
and invisible characters, path traversal, NUL and overlong strings."""

from __future__ import annotations

CANARY = "/tmp/hpchub-canary"
"""A command injected anywhere would create this file (on a node, the hub side or here)."""

_SHELL = [
    f"; touch {CANARY}", f"$(touch {CANARY})", f"`touch {CANARY}`", f"| touch {CANARY}", f"&& touch {CANARY}",
    f"|| touch {CANARY}", f"& touch {CANARY} &", f"> {CANARY}", "< /etc/shadow", f"${{IFS}}touch${{IFS}}{CANARY}",
    f"'; touch {CANARY}; '", f'"; touch {CANARY}; "', f"\\\"; touch {CANARY}", f"$({CANARY})", "$HOME", "${HOME}",
    "~root", "*", "?", "[a-z]*", "!!", "!-1", "%", "^", "\\", "'", '"', "`", "$", "#", "{a,b}", "a b", "\t",
    f"batch;touch {CANARY}", f"batch$(touch {CANARY})", f"batch`touch {CANARY}`", "batch&&id", "batch||id",
    "batch|id", "batch>x", "batch<x", "batch#x", "batch\\", "batch'", 'batch"', "batch$", "batch ",
]
_LINES = [
    "batch\n", "batch\r", "batch\r\n", "\nbatch", f"batch\n#SBATCH --wrap=touch {CANARY}",
    f"batch\ntouch {CANARY}", "batch\x0btouch", "batch\x0ctouch", "batch\u2028touch", "batch\u2029touch",
    "batch\x85touch", "01:00:00\n#SBATCH --uid=0", f"#SBATCH --wrap=touch {CANARY}", "#SBATCH --uid=0",
    "#SBATCH --export=ALL,LD_PRELOAD=/tmp/x.so", "#!/bin/sh", f"\n\ntouch {CANARY}\n", "x\nHPCHUB_LAUNCHER_EOF\nid",
    "HPCHUB_LAUNCHER_EOF", "EOF", "batch\0", "\0", "a\0b",
]
_TEMPLATES = [
    "{{ 7*7 }}", "{{7*'7'}}", "{% for x in range(9999999) %}x{% endfor %}", "{{ config }}", "{{ self }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{% raw %}", "{% endraw %}", "{# comment", "#}",
    "${7*7}", "#{7*7}", "<%= 7*7 %>", "{{", "}}", "{%", "%}", "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>",
    "javascript:alert(1)", "%s%s%s%n", "%(x)s", "{0}", "{0.__class__}",
]
_NUMBERS = [
    "-1", "-0", "0", "00", "+1", "1e3", "1.5", "0x10", "0o7", "0b1", "1_000", " 1 ", "1 2", "١", "１", "²", "ⅷ",
    "9" * 30, "9" * 400, "-" + "9" * 30, "NaN", "nan", "inf", "-inf", "Infinity", "None", "null", "true", "false",
    "[]", "{}", "1;id", "1$(id)",
]
_TIMES = [
    "99:99:99", "-01:00:00", "00:00:00", "00:00:59", "1:00:00:00:00", "999999999:00:00", "1-25:00:00",
    "01:00", "1e9", "UNLIMITED", "infinite", "INFINITE", "01:00:00 ", "01:00:00;id", "０１:００:００", "٠١:٠٠:٠٠",
]
_UNICODE = [
    "bаtch",  # Cyrillic a
    "bаtсh", "ｂａｔｃｈ", "batch\u200b", "\u200bbatch", "bat\u00adch", "batch\u202e", "\u202ehctab", "bAtch", "BATCH",
    "batch\ufeff", "batch\u0301", "ⓑⓐⓣⓒⓗ", "𝐛𝐚𝐭𝐜𝐡", "phys\u0131cs", "physіcs",  # dotless i, Ukrainian i
    "normal\u00a0", "nоrmal", "gpu\u200d", "intel\u2060",
]
_PATHS = [
    "../../etc/passwd", "..", ".", "/", "/etc/passwd", "....//....//etc", "..%2f..%2fetc", "%2e%2e%2f",
    "~/.ssh/id_ed25519", "/proc/self/environ", "/dev/zero", "C:\\Windows", "\\\\server\\share", "file:///etc/passwd",
    "batch/../debug", "debug/..", "a/b",
]
_LONG = ["a" * 65, "a" * 256, "a" * 4096, "batch" * 2000, "x" * 100_000, "é" * 300, "\U0001f600" * 100]
# Blank: a value of only whitespace (ASCII and Unicode) is "not given", never "no value".
BLANK = [" ", "  ", "\t", "\n", "\r\n", " \t\n ", "\u00a0", "\u3000", "\u2003", "\u3000 \t", "\x0b", "\x0c",
         "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029"]
# Every C0 and C1 control character and DEL, and invisible format characters, inside a value.
CONTROL = ([f"batch{chr(code)}x" for code in [*range(0x00, 0x20), 0x7f, *range(0x80, 0xa0)] if chr(code) not in "\t\n\r"]
           + [f"batch{c}" for c in "\u200b\u200c\u200d\u200e\u200f\u202a\u202e\u2060\u2066\ufeff\ue000\U000e0001"]
           + ["\x1b[31mbatch", "batch\x1b]0;title\x07", "\x00", "\x7f"])
_TYPES_AS_TEXT = ["batch debug", "batch,debug", "batch&debug", "gpu|intel", "gpu&", "&gpu", "gpu&&intel", "!gpu",
                  "gpu*", "(gpu)", "[gpu]", "gpu,intel", "gpu intel"]

HOSTILE_TEXT: list[str] = list(dict.fromkeys(
    _SHELL + _LINES + _TEMPLATES + _NUMBERS + _TIMES + _UNICODE + _PATHS + _LONG + _TYPES_AS_TEXT + BLANK + CONTROL))

HOSTILE_JSON: list = [-1, 0, 10**30, -10**30, 2**63, 1.5, float("1e308"), True, False, None, [], ["batch"], {},
                      {"$gt": ""}, [1, 2]]
"""Values of other JSON types than a field takes."""

assert len(HOSTILE_TEXT) >= 200, len(HOSTILE_TEXT)

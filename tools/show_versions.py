"""Print the installed version of each distribution named; fail unless each ``name==version`` matches.

    python tools/show_versions.py numpy 'dask[array]==2024.12.0' ...

Used by noxfile.py to show (and, for the minimum session, check) what a session installed.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import version


def main(args: list[str]) -> int:
    wrong = []
    for arg in args:
        name, pin = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[.*\])?(?:==(.+))?", arg).groups()
        installed = version(name)
        print(f"  {name:16} {installed}")
        if pin is not None and installed != pin:
            wrong.append(f"{name} {installed} (expected {pin})")
    print(f"  {'python':16} {sys.version.split()[0]}")
    if wrong:
        print("not the declared versions: " + ", ".join(wrong), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""python3 -m muond layout MODULE:FN|FILE.py:FN --out F [...]: see muond.layout.main."""

import sys

from .layout import main

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "layout":
        print("usage: python3 -m muond layout MODULE:FN|FILE.py:FN --out FILE [--method M] "
              "[--gradient-mode local|sharded] [--ranks N] [--print-plan]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[2:]))

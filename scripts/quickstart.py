#!/usr/bin/env python
"""The README's main job, on the built-in default (simulated events): the door to `modeling_polarbert.quickstart`,
which says what it runs and writes (`polarbert quickstart` is the same from an installed package).

    python scripts/quickstart.py                 # the README gives its measured time on 2 CPU cores
    python scripts/quickstart.py --small         # a smaller run (the test suite uses it)
    python scripts/quickstart.py --backbone PATH # fine-tune from another saved backbone
    python scripts/quickstart.py --backbone checkpoints/polarbert-8m-sim --freeze-backbone  # a GPU one: head only
"""

from modeling_polarbert.quickstart import main

if __name__ == "__main__":
    main()

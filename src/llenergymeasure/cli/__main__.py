"""``python -m llenergymeasure.cli`` is ``llem``."""

from llenergymeasure.cli import main

main()

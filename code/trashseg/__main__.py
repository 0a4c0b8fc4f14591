"""`python -m trashseg <verb>`: the same as the `trashseg` console script."""

from trashseg.cli import main

main()

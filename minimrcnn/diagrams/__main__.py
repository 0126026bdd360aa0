"""`python -m minimrcnn.diagrams --out docs/`: write architecture.png (`--all`: every drawing)."""

from minimrcnn.diagrams.cli import main

main()

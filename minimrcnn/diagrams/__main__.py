"""`python -m minimrcnn.diagrams --out docs/`: write architecture.png (`--all`: every drawing)."""

from minimrcnn.diagrams import main

main()

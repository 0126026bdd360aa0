"""The paper's ablations in miniature (chapters 09 and 10): controlled experiments on the CPU presets.

python -m minimrcnn.ablations --help

sets.py      the sets and studies as data: each variant's overrides, the paper's numbers
sweep.py     the runner: one config builder, one reuse check, results.json / .md / .png
results.py   means and spreads over seeds, paired gains, verdicts, Markdown and HTML tables
plots.py     bar charts of a set: ours beside the paper's
previews.py  a run's predicted masks on a few validation images (samples.json), small enough to commit
panel.py     chapter 09's widget: choose a set, read its table and bars, train a variant live
"""

"""Experiments on top of the engines: the side-by-side comparison, parameter sweeps, Monte Carlo
over market paths, the statistical evidence of a run, and their ``drb`` commands.

Submodules: :mod:`~runners.experiments.compare`, :mod:`~runners.experiments.sweep`,
:mod:`~runners.experiments.montecarlo`, :mod:`~runners.experiments.common` (what they share),
:mod:`~runners.experiments.evidence` (the statistics), :mod:`~runners.experiments.evidence_outputs`
(their CSV outputs) and :mod:`~runners.experiments.commands` (the command line). The experiments
never import the report (:mod:`runners.report`): the CLI runs it after a comparison.
"""

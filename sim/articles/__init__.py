"""The analyses behind the notebooks, as functions to call from your own: compare strategies
over scenarios (``compare``), tune checkpoints against Young's and Daly's optima
(``checkpoints``), and fit your own job durations and deploys into a scenario (``workload``);
``figures`` holds what their figures share."""

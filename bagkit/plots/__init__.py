"""Every matplotlib figure, drawn from result objects (and the cohort they came from); one palette
(``cohort.PALETTE``). Figures are ``matplotlib.figure.Figure`` objects, never pyplot state."""

"""What the figures share: the colours and legend labels of the twin networks, "plain" (no
normalization) and "bn" (batch norm before each nonlinearity). Font sizes, figure sizes and
the phone's stacked layout are the renderer's (``kb.run.figures``): drawers set none, and
write symbols as mathtext (``r"$\\sigma_B$"``), as the prose writes them."""

COLORS = {"plain": "tab:red", "bn": "tab:blue"}
LABELS = {"plain": "without batch norm", "bn": "with batch norm"}

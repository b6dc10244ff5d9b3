"""What the figures share: the colours and legend labels of the twin networks, "plain" (no
normalization) and "bn" (batch norm before each nonlinearity)."""

COLORS = {"plain": "tab:red", "bn": "tab:blue"}
LABELS = {"plain": "without batch norm", "bn": "with batch norm"}

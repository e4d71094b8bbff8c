"""The operator dashboard, one module per page family: campaigns, contacts (import, do-not-call), calls."""

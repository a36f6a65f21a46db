"""Admin for manual adjustments: the approval queue, the request form and page,
the approve/review/reject actions, the document download, the reason codes."""

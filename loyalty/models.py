"""The models of the app ``loyalty``, wherever they live: Django loads this module to
register them under the app label (the migrations name them ``loyalty.<Model>``).

- ``loyalty.kernel.models``: stores, tills, the outbox, the job log;
- ``loyalty.ledger.models``: the points ledger;
- ``loyalty.adjustments.models``: manual adjustments (maker-checker).
"""

from loyalty.adjustments.models import (  # noqa: F401
    AdjustmentEvent,
    AdjustmentReason,
    AdjustmentReport,
    AdjustmentRequest,
)
from loyalty.kernel.models import JobRun, OutboundMessage, Store, Till  # noqa: F401
from loyalty.ledger.models import (  # noqa: F401
    Account,
    IdempotencyKey,
    LedgerOperation,
    LotMovement,
    MemberBalance,
    PointsLot,
    Transfer,
)

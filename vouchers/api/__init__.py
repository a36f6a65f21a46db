"""The vouchers API: the member's (``member``), a till redemption's member side and the
offline queue (``redemptions``), the till's shifts and vouchers (``till``); routes in ``urls``."""

"""The vouchers API's routes, in three lists: ``loyalty.api.urls`` includes each where
the order of its routes needs it.

- ``till_patterns``: the till's shifts and vouchers, into the till's patterns under
  ``api/v1/pos/`` (before their catch-all);
- ``redemption_patterns``: the member's side of a till redemption and the offline queue,
  under ``api/v1/`` before the till's routes and catch-all;
- ``member_patterns``: rewards and the member's vouchers, under ``api/v1/``.
"""

from django.urls import path

from loyalty.ledger.api.redemptions import RedemptionAuthoriseApi
from vouchers.api import member, redemptions, till

till_patterns = [
    path("shifts", till.ShiftStartApi.as_view(), name="pos-shift-start"),
    path("shifts/end", till.ShiftEndApi.as_view(), name="pos-shift-end"),
    path("vouchers/validate", till.VoucherValidateApi.as_view(), name="pos-voucher-validate"),
    path("vouchers/redeem", till.VoucherRedeemApi.as_view(), name="pos-voucher-redeem"),
    path("vouchers/public-key", till.VoucherPublicKeysApi.as_view(), name="pos-voucher-public-key"),
]

redemption_patterns = [
    path("me/redemptions/pending", redemptions.MemberRedemptionsPendingApi.as_view(), name="me-redemptions-pending"),
    path(
        "me/redemptions/<str:hold_id>/confirm",
        redemptions.MemberRedemptionConfirmApi.as_view(),
        name="me-redemption-confirm",
    ),
    path(
        "pos/redemptions/<str:hold_id>/authorise",
        RedemptionAuthoriseApi.as_view(),  # the till's points hold (loyalty.ledger.api.redemptions)
        name="pos-redemption-authorise",
    ),
    path("pos/offline/redemptions", redemptions.OfflineRedemptionSubmitApi.as_view(), name="pos-offline-redemptions"),
]

member_patterns = [
    path("rewards", member.RewardCatalogueApi.as_view(), name="rewards"),
    path("me/vouchers", member.MeVouchersApi.as_view(), name="me-vouchers"),
    path("me/vouchers/<str:voucher_id>", member.MeVoucherApi.as_view(), name="me-voucher"),
    path("me/vouchers/<str:voucher_id>/qr", member.MeVoucherQrApi.as_view(), name="me-voucher-qr"),
    path("me/vouchers/<str:voucher_id>/barcode", member.MeVoucherBarcodeApi.as_view(), name="me-voucher-barcode"),
    path(
        "me/vouchers/<str:voucher_id>/report-lost",
        member.MeVoucherReportLostApi.as_view(),
        name="me-voucher-report-lost",
    ),
]

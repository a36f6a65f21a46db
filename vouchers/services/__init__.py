"""The vouchers services: issuing, redemption at the till (vouchers and points), shifts,
offline redemptions, limits, the audit queue, codes, QR tokens and images."""

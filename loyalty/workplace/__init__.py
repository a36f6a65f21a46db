"""The staff workplace: what the admin shows across every part of the product.

- ``display``: one way to name and link each thing staff meet (a member, a staff
  member, a store, a till, an operation, a voucher), signed points, times in the
  programme's time zone, labels for codes and readable tables for structured data.
  Every admin renders through it; no page shows a bare id.

It is an entry point (like the admins): it may read every part of the product, and no
service imports it.
"""

"""Payments: providers behind one interface, the payment records, callbacks and refunds.

Money reaches an order only through `order_writer.lifecycle.mark_paid`, inside the transaction
that also records the callback; refunds go through `PaymentsRefunder`, the lifecycle's Refunder.
"""

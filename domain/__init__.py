"""Pure business rules (no I/O): calendars, offers, fees, payouts, CRA, invoices, documents.

Kept free of imports: the Temporal workflow sandbox re-imports packages, so each caller
imports only the module it needs (`from domain.payouts import compute_payout`).
"""

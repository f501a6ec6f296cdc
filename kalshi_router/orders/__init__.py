"""The closed loop: each order's life at the exchange after it was accepted (design.md §7)."""

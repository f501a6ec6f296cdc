"""Risk controls around the router: pre-trade checks, trading state, kill switch, watchdogs."""

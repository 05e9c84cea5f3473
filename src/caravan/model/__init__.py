"""Pure data and rules, no I/O: declarations, statuses, variables, the stage-lock state machine.

Nothing here imports anything else of caravan except ``caravan.errors``.
"""

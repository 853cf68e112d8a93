"""The refund workflow, split by job: `workflow` (handlers and the run's outline), `case`
(state and pure transitions), `views` (status, facts, ETA, projection), `payment` (the
payment loop), `journal` (audit trail and search attributes), `patches` (the register)."""
